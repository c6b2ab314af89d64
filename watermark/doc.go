// Package watermark embeds and detects augment's provenance watermark: a keyed, invisible
// mark in the pixels of 8- to 16-bit greyscale images (64 to 4096 px a side) that says an
// image is synthetic and carries a 40-bit payload id linking it to its manifest row, so that
// the information survives when the DICOM tags are stripped.
//
// The mark is a tile of 16×16 cells repeated over the image (112 cells on the short side, 56
// on images under 160 px), whose cells carry a key-derived pilot and 128 Reed–Solomon coded
// bits (version, payload id, CRC-16; github.com/vivint/infectious, which corrects errors,
// not only erasures), decoded from soft cell values by an ordered-statistics search over the
// code's binary image when byte-wise decoding fails (osd.go: no Go library decodes a binary
// code from soft values). On images whose short side is 128–319 px a second, untiled
// pattern of 64×64 cells over the whole frame (coarse.go) takes 11 % of the energy, so that
// a quarter-size copy, which averages the tile away, can still be found.
//
// The mark's local strength is the shape that maximises the summed mark under an SSIM
// model of the local mean and variance and the PSNR floor, capped by PSNR and by the SSIM
// measured on the result; the embedder runs the detector's own model to give every cell the
// same margin over the host image (informed embedding) and quantises with error diffusion.
// The detector folds the image modulo the tile period at a searched scale and finds the
// pilot in all 8 orientations and all shifts by FFT (gonum); images resized to another
// aspect or cropped and resized are read at the grid the tile's own periods and energy give
// (aspect.go, key-free), letterboxed ones inside their constant bands (letterbox.go). It
// reports present/absent with a false-positive probability from the null distributions of
// its statistics (pilot and coarse pattern: over random keys, which holds for any image, by
// the sharp Gaussian bound for weighted sums of random signs and, at the reads it holds in
// full, Chernoff's bound and an exact count for those reads' own weights, tail.go, and a
// weighted Bonferroni bound over every hypothesis it could read; code: the share of random words that
// decode, combined with the pilot's), the payload when the code decodes it, and the
// corrected errors. An unmarked or destroyed image yields "absent"
// and no payload. MarkReliance tells a mark that lives in flat areas at the ends of the
// value range, which lossy steps remove, from one that does not.
//
// The package works on pixel arrays only (Gray); package wmfile reads and writes files.
// Resampling, folding, the detector's 5×5 median and the SSIM strength model are written
// here because they are specific to the scheme (float area averages of values and their
// squares in one pass; folds with a template-linear null; the median works on float working
// grids, with clamped borders, many times per detection); codes and FFTs come from
// libraries. Everything is deterministic for a given key. See docs/watermark.md for the
// design, the threat model and measured robustness.
package watermark
