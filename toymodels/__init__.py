"""toymodels: train thousands of toy models of superposition at once, and measure what they learn."""
