"""MES quality: inspection characteristics, measurement results, SPC, nonconformances,
holds and signed dispositions (enforcement rule 5 of PRODUCT.md)."""
