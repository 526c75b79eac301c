"""The only code that speaks HTTP to ElevenLabs: client, answer parsing, errors, retries, keys."""
