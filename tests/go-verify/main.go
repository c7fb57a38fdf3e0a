// go-verify checks an `audit prove` file with the Go project's own implementations of C2SP
// signed notes (golang.org/x/mod/sumdb/note) and RFC 6962 inclusion proofs
// (golang.org/x/mod/sumdb/tlog), none of need-to-know's code: a tenant's auditor can do the
// same.
//
// Usage: go-verify PROOF.json VERIFIER_KEY_FILE. Exit 0 when every record's checkpoint is
// signed by the key and every record is in the tree it signs; 1 otherwise.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type proofs struct {
	Subject string `json:"subject"`
	Records []struct {
		Line       string   `json:"line"`
		Index      int64    `json:"index"`
		Proof      []string `json:"proof"`
		Checkpoint string   `json:"checkpoint"`
	} `json:"records"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: go-verify PROOF.json VERIFIER_KEY_FILE")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	vkey, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return fmt.Errorf("verifier key: %v", err)
	}
	var p proofs
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	if len(p.Records) == 0 {
		return fmt.Errorf("no records")
	}
	for _, r := range p.Records {
		n, err := note.Open([]byte(r.Checkpoint), note.VerifierList(verifier))
		if err != nil {
			return fmt.Errorf("record %d: checkpoint: %v", r.Index, err)
		}
		origin, size, root, err := parseCheckpoint(n.Text)
		if err != nil {
			return fmt.Errorf("record %d: %v", r.Index, err)
		}
		var proof tlog.RecordProof
		for _, h := range r.Proof {
			b, err := base64.StdEncoding.DecodeString(h)
			if err != nil || len(b) != tlog.HashSize {
				return fmt.Errorf("record %d: bad proof hash", r.Index)
			}
			var hash tlog.Hash
			copy(hash[:], b)
			proof = append(proof, hash)
		}
		leaf := tlog.RecordHash([]byte(r.Line))
		if err := tlog.CheckRecord(proof, size, root, r.Index, leaf); err != nil {
			return fmt.Errorf("record %d: inclusion: %v", r.Index, err)
		}
		fmt.Printf("record %d: in %s at size %d\n", r.Index, origin, size)
	}
	fmt.Printf("OK: %d record(s)\n", len(p.Records))
	return nil
}

// parseCheckpoint reads a C2SP tlog-checkpoint body: origin, decimal size, base64 root.
func parseCheckpoint(text string) (string, int64, tlog.Hash, error) {
	var root tlog.Hash
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[0] == "" {
		return "", 0, root, fmt.Errorf("not a checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return "", 0, root, fmt.Errorf("bad tree size")
	}
	b, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(b) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("bad root hash")
	}
	copy(root[:], b)
	return lines[0], size, root, nil
}
