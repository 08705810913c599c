package jobresult

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestEncodeRoundTrip(t *testing.T) {
	ok := true
	in := Result{Step: "backup-pvc", Host: "host-0", Duration: "1.5s", RepositoryInitialized: &ok,
		Snapshots: []v1beta1.SnapshotStats{{Name: "4bba301e", Path: "/stow-data", TotalSize: "1.000 MiB"}}}
	out, err := Decode(string(Encode(in)))
	if err != nil {
		t.Fatal(err)
	}
	if out.Step != in.Step || out.Host != in.Host || len(out.Snapshots) != 1 || out.Snapshots[0].Name != "4bba301e" || !*out.RepositoryInitialized {
		t.Fatalf("round trip lost data: %+v", out)
	}
}

// The kubelet keeps only 4096 bytes of a termination message: whatever the
// input, Encode must produce valid JSON within that limit, keeping the error.
func TestEncodeFitsTerminationMessage(t *testing.T) {
	many := make([]v1beta1.SnapshotStats, 200)
	for i := range many {
		many[i] = v1beta1.SnapshotStats{Name: "0123456789abcdef", Path: "/stow-data/" + strings.Repeat("p", 40)}
	}
	cases := map[string]Result{
		"long error":         {Step: "backup-pvc", Error: strings.Repeat("é unreadable file /stow-data/x; ", 400)},
		"many snapshots":     {Step: "update-status", Snapshots: many},
		"both":               {Step: "update-status", Snapshots: many, Error: strings.Repeat("x", 10000)},
		"multibyte boundary": {Step: "s", Error: strings.Repeat("ü", 3000)},
		"huge host (target.alias)": {Step: "backup-pvc", Host: strings.Repeat("h", 4500),
			Snapshots: []v1beta1.SnapshotStats{{Name: strings.Repeat("a", 64), Path: "/stow-data", TotalSize: "1 MiB"}}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			b := Encode(r)
			if len(b) > MaxMessageBytes {
				t.Fatalf("encoded %d bytes, limit %d", len(b), MaxMessageBytes)
			}
			out, err := Decode(string(b))
			if err != nil {
				t.Fatalf("not valid JSON after truncation: %v", err)
			}
			if r.Error != "" && (out.Error == "" || !utf8.ValidString(out.Error)) {
				t.Fatalf("error lost or broken: %q", out.Error)
			}
			// A success stays a success with every snapshot accounted for.
			if r.Error == "" && out.Error != "" {
				t.Fatalf("success turned into error %q", out.Error)
			}
			if len(out.Snapshots)+out.SnapshotsOmitted != len(r.Snapshots) {
				t.Fatalf("%d snapshots reported + %d omitted, want %d", len(out.Snapshots), out.SnapshotsOmitted, len(r.Snapshots))
			}
			if len(r.Snapshots) > 0 && len(out.Snapshots) == 0 {
				t.Fatalf("every snapshot dropped")
			}
		})
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := Decode("OOMKilled"); err == nil {
		t.Fatal("plain text must not decode as a result")
	}
}

// A Function written for Stash leaves Stash's output.json: it reads as that
// step's report, failures included; Stow's own results are not taken for one.
func TestFromStashOutput(t *testing.T) {
	backup := `{"hostBackupStats":[{"hostname":"host-0","phase":"Succeeded","duration":"3s","snapshots":[{"name":"4bba301e","path":"/source/data","totalSize":"1 MiB","fileStats":{"totalFiles":3}}]}],"repositoryStats":{"integrity":true}}`
	r, ok := FromStashOutput([]byte(backup))
	if !ok || !r.StashOutput || r.Host != "host-0" || r.Error != "" || len(r.Snapshots) != 1 || r.Snapshots[0].Path != "/source/data" || *r.Snapshots[0].FileStats.TotalFiles != 3 {
		t.Fatalf("backup output = %+v, %v", r, ok)
	}
	r, ok = FromStashOutput([]byte(`{"hostRestoreStats":[{"hostname":"host-1","phase":"Failed"}]}`))
	if !ok || r.Host != "host-1" || r.Error == "" {
		t.Fatalf("failed restore output = %+v, %v", r, ok)
	}
	if _, ok := FromStashOutput(Encode(Result{Step: "backup-pvc", Host: "host-0"})); ok {
		t.Fatal("Stow's own result taken for Stash's output")
	}
}
