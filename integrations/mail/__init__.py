"""Mail to the veiligheidshuizen: composition (templates, references, Message-IDs) and the SMTP relay. The outbox
that queues and sends is the use case ``services.mail_outbox``."""
