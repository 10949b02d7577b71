package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"iproc/reporting/notify"
)

// TestSamplesAreValid decodes the ready-to-post sample bodies of samples/
// (the README's curl lines post them) with the server's own validators.
func TestSamplesAreValid(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "samples", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := notify.DecodeContactProcessed(read("contact-processed.json"), ""); err != nil {
		t.Errorf("contact-processed.json: %v", err)
	}
	if _, err := notify.DecodeCampaignGroupState(read("campaign-group-state.json")); err != nil {
		t.Errorf("campaign-group-state.json: %v", err)
	}
	for _, f := range []string{"callback.json", "callback-wrapped.json"} {
		if _, _, err := notify.DecodeCallback(read(f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := notify.DecodeCDR(read("cdr.json")); err != nil {
		t.Errorf("cdr.json: %v", err)
	}
}

// TestReadmeCurlLinesWork runs every curl line of the README that posts to
// /ingest/ as pasted (from the repository root, against the built binary,
// only the address changed) and checks that each notification is accepted.
func TestReadmeCurlLinesWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl not found and CI is set")
		}
		t.Skip("curl not found")
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^curl .*/ingest/.*$`).FindAllString(string(readme), -1)
	if len(lines) < 4 {
		t.Fatalf("the README has %d curl lines posting to /ingest/, want the four samples", len(lines))
	}
	p := startBinary(t, "", nil, "--data", t.TempDir())
	for _, line := range lines {
		cmd := exec.Command("sh", "-c", strings.ReplaceAll(line, "http://127.0.0.1:8080", p.URL))
		cmd.Dir = ".."
		out, err := cmd.Output()
		var answer struct {
			Accepted bool `json:"accepted"`
		}
		if err != nil || json.Unmarshal(out, &answer) != nil || !answer.Accepted {
			t.Errorf("%s\n→ %v %s", line, err, out)
		}
	}
}
