"""The referral use case (``!aanmelden``): a person not yet known, with suspected complex problems, referred to
the veiligheidshuis of the gemeente. The referral row, its mail, the audit record and the figure commit together;
a later decision about the person is fed back to this house too (``services.besluit``)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import format_local
from domain.errors import UserError
from domain.identifiers import PersonId
from domain.veiligheidshuizen import Veiligheidshuis, Veiligheidshuizen, mail_identifier
from services.base import Caller, Tx
from services.mail_outbox import MailService
from storage import besluit_queries as q
from storage.audit import Auditor
from storage.besluit_models import AanmeldingRow
from storage.statistiek_models import AANMELDING, record_fact


@dataclass(frozen=True)
class Aangemeld:
    person: PersonId
    vh_naam: str
    gemeente: str
    ref: str
    mailbox: str


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").split())


class AanmeldService:
    def __init__(self, *, auditor: Auditor, veiligheidshuizen: Veiligheidshuizen, mail: MailService) -> None:
        self.auditor = auditor
        self.veiligheidshuizen = veiligheidshuizen
        self.mail = mail

    def split_gemeente(self, words: tuple[str, ...]) -> tuple[Veiligheidshuis, str, tuple[str, ...]]:
        """The longest run of words that names a gemeente ('Wijk bij Duurstede'), then the reason."""
        vhs = self.veiligheidshuizen
        for n in range(min(len(words), 5), 0, -1):
            name = " ".join(words[:n])
            vh = vhs.for_gemeente(name)
            if vh is not None:
                canonical = next((g for g in vh.gemeenten if _norm(g) == _norm(name)), name)
                return vh, canonical, words[n:]
        near = vhs.nearest_gemeenten(words[0]) if words else []
        hint = f" Bedoelde u: {', '.join(near)}?" if near else ""
        raise UserError(f"Gemeente '{(words[0] if words else '')[:30]}' is niet bekend bij een veiligheidshuis.{hint}")

    async def refer(self, tx: Tx, act: Caller, person: PersonId, words: tuple[str, ...]) -> Aangemeld:
        """``words``: the gemeente, then the reason."""
        vh, gemeente, rest = self.split_gemeente(words)
        reden = " ".join(rest).strip()
        if not reden:
            raise UserError("Er ontbreekt een reden. Voorbeeld: !aanmelden 123456782 Utrecht vermoeden van schulden "
                            "en verslaving")
        subject = self.auditor.subject_of(person.value)
        await q.add_referral(tx, AanmeldingRow(subject=subject, veiligheidshuis=vh.key, created_by=act.sender,
                                               created_at=act.now))
        queued = await self.mail.queue(
            tx, kind="aanmelding", vh=vh, room_id=act.room_id, event_id=act.event_id, subject_hash=subject,
            now=act.now, hold=False, values={
                "persoon": mail_identifier(vh, person, None), "gemeente": gemeente, "reden": reden[:1000],
                "datum": format_local(act.now)})
        await act.audit("persoon.aangemeld", person=person.value, veiligheidshuis=vh.key,
                        ref=queued.ref)
        await record_fact(tx, kind=AANMELDING, at=act.now, veiligheidshuis=vh.key)
        return Aangemeld(person, vh.naam, gemeente, queued.ref, vh.mailbox)
