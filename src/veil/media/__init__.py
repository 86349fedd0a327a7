"""Reading and writing media: decode (source), encode (sink), animations, audio, metadata, inspection."""
