"""Mail to the veiligheidshuizen: composition, the outbox and its worker."""
