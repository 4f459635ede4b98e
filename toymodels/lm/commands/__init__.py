"""The code of the `toymodels lm` commands, one module per family (`store`: harvest, info;
`train_sae`; `evaluate`; `features`: top-features, latent, contrast), so that `toymodels.lm.cli`
is only the table that registers them."""
