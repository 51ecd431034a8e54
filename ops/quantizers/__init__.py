"""Tokenizers: an MLP autoencoder around a quantizer that turns an item embedding into discrete codes.

`vq.VectorQuantizer` is the one quantization layer; `rqvae.ResidualQuantizer` and `moc.MixtureQuantizer`
compose it. `vqvae.VQVAE`, `rqvae.RQVAE`, `moc.MoC` and `multi_embedding.MultiEmbedding` are the tokenizers,
`train.train_tokenizer` fits any of them and `checkpoint` saves and rebuilds them from one file.
"""
