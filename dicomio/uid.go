package dicomio

import (
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"
)

// UUIDRoot is the root of UIDs derived from a UUID (PS3.5 B.2): "2.25." followed by the
// UUID's 128 bits as one decimal number.
const UUIDRoot = "2.25"

// maxUIDLength is the longest UID PS3.5 §9.1 allows.
const maxUIDLength = 64

// UIDKind names what a derived UID identifies; it separates the name spaces so that a study and
// an instance derived from the same key never share a UID.
type UIDKind string

// The kinds of UID the synthetic writer derives.
const (
	UIDStudy            UIDKind = "study"
	UIDSeries           UIDKind = "series"
	UIDInstance         UIDKind = "instance"
	UIDFrameOfReference UIDKind = "frame-of-reference"
	UIDImplementation   UIDKind = "implementation-class"
)

// ValidateUIDRoot checks that root can prefix derived UIDs: dot-separated numeric components
// without leading zeros, short enough to leave at least 8 digits for the derived part. An empty
// root means UUIDRoot.
func ValidateUIDRoot(root string) error {
	if root == "" || root == UUIDRoot {
		return nil
	}
	if err := ValidateUID(root); err != nil {
		return fmt.Errorf("UID root: %w", err)
	}
	if len(root)+1+8 > maxUIDLength {
		return fmt.Errorf("UID root %q is %d characters long; it must leave room for 8 digits within 64", root, len(root))
	}
	return nil
}

// ValidateUID checks the syntax of a UID (PS3.5 §9.1): at most 64 characters, numeric components
// separated by dots, no component empty or starting with 0 unless it is "0", the first
// component 0, 1 or 2 (an ISO OID root arc).
func ValidateUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("empty UID")
	}
	if len(uid) > maxUIDLength {
		return fmt.Errorf("UID %q is longer than 64 characters", uid)
	}
	if uid[0] < '0' || uid[0] > '2' || (len(uid) > 1 && uid[1] != '.') {
		return fmt.Errorf("UID %q does not start with an ISO OID root arc (0, 1 or 2)", uid)
	}
	for _, c := range strings.Split(uid, ".") {
		if c == "" {
			return fmt.Errorf("UID %q has an empty component", uid)
		}
		if len(c) > 1 && c[0] == '0' {
			return fmt.Errorf("UID %q has a component with a leading zero", uid)
		}
		for _, r := range c {
			if r < '0' || r > '9' {
				return fmt.Errorf("UID %q has a non-digit %q", uid, r)
			}
		}
	}
	return nil
}

// DeriveUID returns the UID of kind for key within run, under root (UUIDRoot when empty). The
// same arguments always give the same UID, so a rerun of a run writes the same UIDs; different
// runs, kinds or keys give unrelated UIDs. Nothing of key can be recovered from the UID (it is a
// SHA-256 digest), so a source UID used as a key does not leak.
//
// Under UUIDRoot the digest's first 128 bits become a version-8 (RFC 9562 custom) UUID written as
// "2.25.<decimal>". Under another root the digest becomes a decimal component that fills the
// UID up to 64 characters (at most 38 digits) and never starts with 0.
func DeriveUID(root, run string, kind UIDKind, key string) string {
	h := sha256.New()
	for _, part := range []string{"augment-uid-v1", root, run, string(kind), key} {
		fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	sum := h.Sum(nil)
	if root == "" || root == UUIDRoot {
		u := sum[:16]
		u[6] = (u[6] & 0x0f) | 0x80 // version 8
		u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
		return UUIDRoot + "." + new(big.Int).SetBytes(u).String()
	}
	digits := min(maxUIDLength-len(root)-1, 38)
	lo := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(digits-1)), nil) // 10^(d-1)
	span := new(big.Int).Mul(lo, big.NewInt(9))                              // 9·10^(d-1)
	n := new(big.Int).Mod(new(big.Int).SetBytes(sum), span)
	n.Add(n, lo) // exactly d digits, first digit 1–9
	return root + "." + n.String()
}

// ImplementationClassUID is the Implementation Class UID (0002,0012) augment writes under root.
func ImplementationClassUID(root string) string {
	return DeriveUID(root, "", UIDImplementation, "augment")
}
