"""Click-through-rate prediction on item Semantic IDs: features, labels, four backbones, MoC fusion, the study."""
