package dicomio

// Code is a coded concept (code value, coding scheme designator, code meaning), as in
// DICOM's Code Sequence macro.
type Code struct {
	Value   string `json:"value"`
	Scheme  string `json:"scheme"`
	Meaning string `json:"meaning"`
}

// Demographics are the patient attributes that subgroup audits use. Empty strings and
// AgeKnown=false mean the file does not say; nothing is ever guessed.
type Demographics struct {
	Sex         string  `json:"sex"`          // M, F, O or ""
	AgeYears    float64 `json:"age_years"`    // valid only when AgeKnown
	AgeKnown    bool    `json:"age_known"`    // Patient's Age, else Birth Date and Study Date
	EthnicGroup string  `json:"ethnic_group"` // retired (0010,2160) string, or the code meanings joined
	EthnicCodes []Code  `json:"ethnic_codes,omitempty"`
}

// Image holds the decoded pixels of one instance as stored values, frames first, then rows,
// columns and samples (C order). Exactly one of U8, U16, I8, I16, F32, F64 is set, chosen as the
// smallest type that holds the stored values (BitsAllocated ≤ 8 → 8-bit, else 16-bit; float pixel
// data as float).
type Image struct {
	Rows, Columns, Frames, Samples int
	BitsAllocated, BitsStored      int
	Signed                         bool
	Photometric                    string

	U8  []uint8
	I8  []int8
	U16 []uint16
	I16 []int16
	F32 []float32
	F64 []float64
}
