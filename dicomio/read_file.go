package dicomio

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// readMetaChunk is how much of a file a metadata read starts with; it grows 4× while the
// attributes before Pixel Data are not all in.
const readMetaChunk = 256 << 10

// readHeadBytes is how much of a file readOpen reads to sniff it: small files (a chest X-ray,
// a report) come in whole with that one read and are not read again.
const readHeadBytes = 64 << 10

// readScratchMax bounds the buffers a readScratch keeps between files.
const readScratchMax = 64 << 20

// readScratch holds the buffers one goroutine reuses from file to file (each of Scan's
// workers has one): the file's bytes and the decoded pixels. What a read returns aliases
// them, and is valid only until the next read with the same readScratch.
type readScratch struct {
	file   []byte
	pixels []byte
}

// fileBuffer returns a buffer of n bytes for a file's contents, from s when s is not nil.
func (s *readScratch) fileBuffer(n int64) []byte {
	if s == nil {
		return make([]byte, n)
	}
	if int64(cap(s.file)) < n {
		b := make([]byte, n)
		if n <= readScratchMax {
			s.file = b
		}
		return b
	}
	return s.file[:n]
}

// keepPixels keeps a pixel buffer that a decoder allocated for the next file.
func (s *readScratch) keepPixels(b []byte) {
	if s != nil && cap(b) > cap(s.pixels) && cap(b) <= readScratchMax {
		s.pixels = b[:0]
	}
}

// readSource is an open file whose first bytes have been sniffed.
type readSource struct {
	path    string
	f       *os.File
	size    int64
	head    []byte
	isDICOM bool
	scratch *readScratch // nil: every buffer is allocated for this file
}

// readOpen opens path and sniffs its first bytes.
func readOpen(path string) (*readSource, error) {
	return readOpenWith(path, nil)
}

// readOpenWith is readOpen reading into the buffers of scratch (nil: new buffers).
func readOpenWith(path string, scratch *readScratch) (*readSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("is a directory: %w", ErrNotDICOM)
	}
	src := &readSource{path: path, f: f, size: st.Size(), scratch: scratch}
	src.head = scratch.fileBuffer(min(src.size, readHeadBytes))
	if _, err := io.ReadFull(f, src.head); err != nil {
		f.Close()
		return nil, err
	}
	src.isDICOM = sniffDICOM(src.head[:min(len(src.head), 132)])
	return src, nil
}

func (s *readSource) close() { s.f.Close() }

// readPrefix returns the first n bytes of the file (n at most the file's size); the bytes
// read to sniff the file are reused, not read again.
func (s *readSource) readPrefix(n int64) ([]byte, error) {
	if n <= int64(len(s.head)) {
		return s.head[:n], nil
	}
	buf := s.scratch.fileBuffer(n)
	copy(buf, s.head) // a no-op when both are the scratch buffer
	if n > int64(len(s.head)) {
		if _, err := s.f.ReadAt(buf[len(s.head):], int64(len(s.head))); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
	}
	return buf, nil
}

// read reads the instance; without pixels it reads only as much of the file as the
// attributes before Pixel Data take.
func (s *readSource) read(opt ReadOptions, pixels bool) (Instance, *Image, error) {
	if s.size > opt.maxBytes() {
		return Instance{Path: s.path}, nil, readFail(s.path, fmt.Errorf("file of %d bytes %w of %d bytes", s.size, ErrTooLarge, opt.maxBytes()))
	}
	n := s.size
	if !pixels {
		n = min(s.size, readMetaChunk)
	}
	for {
		data, err := s.readPrefix(n)
		if err != nil {
			return Instance{Path: s.path}, nil, readFail(s.path, err)
		}
		partial := n < s.size
		in, img, err := readBytesWith(data, s.path, opt, pixels, partial, false, s.scratch)
		if err == nil || !partial || !errors.Is(err, ErrTruncated) {
			return in, img, err
		}
		n = min(s.size, 4*n)
	}
}

// readPath reads the file at path.
func readPath(path string, opt ReadOptions, pixels bool) (Instance, *Image, error) {
	src, err := readOpen(path)
	if err != nil {
		return Instance{Path: path}, nil, readFail(path, err)
	}
	defer src.close()
	if !src.isDICOM {
		return Instance{Path: path}, nil, readFail(path, ErrNotDICOM)
	}
	return src.read(opt, pixels)
}
