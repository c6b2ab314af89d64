// Package unclip runs the unCLIP stack of Ramesh et al. (2022) from Go: CLIP text and image
// encoders, the diffusion prior and the autoregressive prior, the diffusion decoder with
// classifier-free guidance and the upsampler cascade, plus the paper's manipulations (variations by
// DDIM inversion, interpolations and text diffs).
//
// The neural networks are ONNX graphs of a model bundle (docs/bundle.md) run by ONNX Runtime through
// github.com/yalue/onnxruntime_go; everything else — schedules, guidance, reranking, inversion,
// slerp, the AR prior's quantisation and PCA, the CLIP tokenizer — is plain Go, as diffusers keeps
// it in Python. Every random draw comes from a [Noise] source the caller passes in, in the order
// documented in docs/bundle.md, so the Python reference (unclip/train/reference.py) fed the same
// noise gives the same images.
//
// Hand-written parts and why: the samplers are a few dozen lines of arithmetic that must match the
// Python reference operation for operation (no Go diffusion library exists); the CLIP byte-level BPE
// has no maintained Go implementation that reproduces OpenAI's tokenizer (including its
// pre-tokenisation pattern and HTML unescaping), so it is written here and checked token for token
// against OpenAI's reference output; the WordPiece tokenizer (BERT vocabularies) is 150 lines checked
// against BERT's own test cases, smaller than any dependency that would bring it.
//
// Images are plain [Tensor] values (float32, C order, NCHW) and embeddings plain []float32.
// A loaded [Pipeline] is safe for concurrent use: ONNX Runtime sessions are DynamicAdvancedSession.
package unclip
