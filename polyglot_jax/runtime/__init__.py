"""The loaded model: ChatModel, decoding, beam search and placement on a mesh."""
