"""Outside systems behind interfaces: the markings registry, mail, notifications."""
