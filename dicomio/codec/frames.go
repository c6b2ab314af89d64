package codec

import (
	"bytes"
	"fmt"
)

// SplitFrames groups the fragments of encapsulated Pixel Data into frames and returns the bytes of
// each frame (its fragments concatenated). offsets is the Basic Offset Table (or the Extended
// Offset Table) when the file has one, else nil; it holds, for each frame, the byte offset of its
// first fragment item relative to the first fragment item (8-byte item headers included).
//
// Without offsets: a single frame takes all fragments; as many fragments as frames means one
// fragment per frame; otherwise a new frame starts at each fragment that begins with the codestream
// start marker of the transfer syntax (JPEG SOI, JPEG 2000 SOC or a JP2 signature box).
func SplitFrames(transferSyntaxUID string, fragments [][]byte, offsets []uint64, frames int) ([][]byte, error) {
	if frames <= 0 {
		return nil, fmt.Errorf("split frames: invalid number of frames %d", frames)
	}
	if len(fragments) == 0 {
		return nil, fmt.Errorf("split frames: no fragments for %d frame(s)", frames)
	}
	if frames > len(fragments) {
		return nil, fmt.Errorf("split frames: %d fragments cannot hold %d frames", len(fragments), frames)
	}
	if frames == 1 {
		return [][]byte{concat(fragments)}, nil
	}
	if len(offsets) == frames {
		if out, err := splitByOffsets(fragments, offsets); err == nil {
			return out, nil
		}
		// A wrong offset table is common enough: fall back to the other rules.
	}
	if len(fragments) == frames {
		out := make([][]byte, frames)
		copy(out, fragments)
		return out, nil
	}
	isStart := startMarker(cleanUID(transferSyntaxUID))
	if isStart == nil {
		return nil, fmt.Errorf("split frames: %d fragments for %d frames and no offset table", len(fragments), frames)
	}
	var groups [][][]byte
	for i, f := range fragments {
		if i == 0 || isStart(f) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], f)
	}
	if len(groups) != frames {
		return nil, fmt.Errorf("split frames: found %d frame starts in %d fragments, want %d frames", len(groups), len(fragments), frames)
	}
	out := make([][]byte, frames)
	for i, g := range groups {
		out[i] = concat(g)
	}
	return out, nil
}

// splitByOffsets groups fragments by the item offsets of an offset table; every offset must be
// the start of a fragment item.
func splitByOffsets(fragments [][]byte, offsets []uint64) ([][]byte, error) {
	out := make([][]byte, len(offsets))
	var pos uint64
	frame := -1
	for _, f := range fragments {
		if frame+1 < len(offsets) && pos == offsets[frame+1] {
			frame++
		} else if frame+1 < len(offsets) && pos > offsets[frame+1] || frame < 0 {
			return nil, fmt.Errorf("offset table entry %d (%d) is not the start of a fragment", frame+1, offsets[frame+1])
		}
		out[frame] = append(out[frame], f...)
		pos += 8 + uint64(len(f))
	}
	if frame != len(offsets)-1 {
		return nil, fmt.Errorf("offset table has %d entries, the fragments hold %d frames", len(offsets), frame+1)
	}
	return out, nil
}

// startMarker returns a test for the first bytes of a frame's codestream, or nil when the
// transfer syntax has none.
func startMarker(ts string) func([]byte) bool {
	switch ts {
	case JPEGBaseline, JPEGExtended, JPEGLossless, JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless:
		return func(b []byte) bool { return len(b) >= 2 && b[0] == 0xFF && b[1] == 0xD8 }
	case JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K:
		return func(b []byte) bool {
			return bytes.HasPrefix(b, []byte{0xFF, 0x4F, 0xFF, 0x51}) || bytes.HasPrefix(b, jp2Signature)
		}
	}
	return nil
}

// jp2Signature is the JPEG 2000 signature box that starts a JP2 file.
var jp2Signature = []byte{0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A}

func concat(fragments [][]byte) []byte {
	if len(fragments) == 1 {
		return fragments[0]
	}
	n := 0
	for _, f := range fragments {
		n += len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fragments {
		out = append(out, f...)
	}
	return out
}
