package manifests

import (
	"fmt"
	"iter"

	"github.com/parquet-go/parquet-go"
)

// InventoryRow is one scanned DICOM file of an inventory manifest: the instance's identity,
// acquisition attributes and demographics, or the reason it could not be read. The JSON
// form is what `augment scan --json` prints, one object per line.
type InventoryRow struct {
	Path              string   `parquet:"path" json:"path"`
	SOPInstanceUID    string   `parquet:"sop_instance_uid" json:"sop_instance_uid"`
	StudyInstanceUID  string   `parquet:"study_instance_uid" json:"study_instance_uid"`
	SeriesInstanceUID string   `parquet:"series_instance_uid" json:"series_instance_uid"`
	SOPClassUID       string   `parquet:"sop_class_uid" json:"sop_class_uid"`
	PatientID         string   `parquet:"patient_id" json:"patient_id"`
	Modality          string   `parquet:"modality" json:"modality"`
	TransferSyntax    string   `parquet:"transfer_syntax" json:"transfer_syntax"`
	BodyPart          string   `parquet:"body_part" json:"body_part"`
	ViewPosition      string   `parquet:"view_position" json:"view_position"`
	Manufacturer      string   `parquet:"manufacturer" json:"manufacturer"`
	ManufacturerModel string   `parquet:"manufacturer_model" json:"manufacturer_model"`
	Institution       string   `parquet:"institution" json:"institution"`
	StudyDate         string   `parquet:"study_date" json:"study_date"`
	Rows              int32    `parquet:"rows" json:"rows"`
	Columns           int32    `parquet:"columns" json:"columns"`
	Frames            int32    `parquet:"frames" json:"frames"`
	SamplesPerPixel   int32    `parquet:"samples_per_pixel" json:"samples_per_pixel"`
	BitsAllocated     int32    `parquet:"bits_allocated" json:"bits_allocated"`
	BitsStored        int32    `parquet:"bits_stored" json:"bits_stored"`
	Signed            bool     `parquet:"signed" json:"signed"`
	Photometric       string   `parquet:"photometric" json:"photometric"`
	Sex               string   `parquet:"sex" json:"sex"`                      // M, F, O or "" when unknown
	AgeYears          *float64 `parquet:"age_years,optional" json:"age_years"` // null when unknown
	EthnicGroup       string   `parquet:"ethnic_group" json:"ethnic_group"`    // "" when unknown; never guessed
	SyntheticData     string   `parquet:"synthetic_data" json:"synthetic_data"`
	IsReport          bool     `parquet:"is_report" json:"is_report"`
	PixelSHA256       string   `parquet:"pixel_sha256" json:"pixel_sha256,omitempty"`
	Error             string   `parquet:"error" json:"error"` // empty when the file was read
	ErrorReason       string   `parquet:"error_reason" json:"error_reason,omitempty"`
}

// InventoryWriter streams inventory rows to a Parquet file; the file appears at its path,
// complete, only when Close succeeds.
type InventoryWriter = Writer[InventoryRow]

// NewInventoryWriter starts an inventory at path, writing to a temporary file in the same
// folder.
func NewInventoryWriter(path string) (*InventoryWriter, error) {
	return NewWriter[InventoryRow](path, "inventory")
}

// WriteInventory writes rows to a Parquet file at path atomically.
func WriteInventory(path string, rows iter.Seq[InventoryRow]) error {
	iw, err := NewInventoryWriter(path)
	if err != nil {
		return err
	}
	for r := range rows {
		if err := iw.Write(r); err != nil {
			iw.Abort()
			return err
		}
	}
	return iw.Close()
}

// ReadInventory reads all rows of an inventory manifest.
func ReadInventory(path string) ([]InventoryRow, error) {
	rows, err := parquet.ReadFile[InventoryRow](path)
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", path, err)
	}
	return rows, nil
}
