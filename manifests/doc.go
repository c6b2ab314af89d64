// Package manifests holds augment's Parquet manifests: plain rows that say what a dataset
// holds (the inventory of a scan) and what a generation run made (one row per synthetic
// image, linked to its pixels by the watermark payload id). Files are written atomically.
// The bias and audit reports read these rows; nothing here knows DICOM or models.
package manifests
