// Package pipeline chains augment's library packages into its main job:
// scan → generate → mark → write → record → report.
//
// It reads the sources a request names (dicomio), builds captions from what a study says,
// samples synthetic images with an unCLIP bundle (unclip), stamps every image with the
// provenance watermark (watermark) as the DICOM writer quantises it, writes each synthetic
// instance with its provenance tags (dicomio), records one manifest row per image
// (manifests), and summarises the run. Every item is independent: a failing item is
// recorded with its error and the run goes on.
//
// The package lives under cmd/augment because it is the CLI's composition of the
// libraries; the libraries know nothing of each other.
package pipeline
