"""Using a trained model: the synthesizer, reading references, writing outputs, export, packed models."""
