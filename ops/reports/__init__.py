"""Reports: which tokenizer helps recommendation most on one data set, as PNG plots, Markdown and HTML.

A report reads only published stage versions (manifests and tables on disk), never a model's internals beyond
the tokenizer contract (`codebook_vectors`): `sources` finds the versions that belong to one data set's
embeddings and splits; `diagnostics` measures each Semantic-ID table (usage, collisions, NMI, spectrum,
correlation); `results` gathers the CTR and retrieval numbers (beside the retrieval stages' most-popular baseline);
`answer` writes the one-paragraph verdict from those numbers; `plots` and `documents` render them; `stage`
caches the whole report by the fingerprints it read. `validation` holds the table and metric checks that the
Dagster asset checks enforce.
"""
