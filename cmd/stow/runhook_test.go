package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowhq/stow/pkg/jobresult"
)

func TestRunHook(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(r.Body)
		body = b.String()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	host, port, _ := strings.Cut(hostPort, ":")
	for _, tc := range []struct {
		path string
		code int
		err  string
	}{{"/ok", 0, ""}, {"/fail", 1, "status 500"}} {
		term := filepath.Join(t.TempDir(), "term")
		handler := fmt.Sprintf(`{"httpPost":{"host":%q,"port":%s,"path":%q,"body":"hello"}}`, host, port, tc.path)
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"run-hook", "--hook=postBackup", "--handler=" + handler, "--termination-log=" + term}, &out, &errOut)
		if code != tc.code || body != "hello" {
			t.Fatalf("%s: exit %d (stderr %s), body %q", tc.path, code, errOut.String(), body)
		}
		b, err := os.ReadFile(term)
		if err != nil {
			t.Fatal(err)
		}
		r, err := jobresult.Decode(string(b))
		if err != nil || !strings.Contains(r.Error, tc.err) || (tc.err == "" && r.Error != "") {
			t.Fatalf("%s: result %+v %v", tc.path, r, err)
		}
	}
	if code := run(context.Background(), []string{"run-hook", "--handler={"}, new(bytes.Buffer), new(bytes.Buffer)); code != 2 {
		t.Fatalf("bad handler: exit %d, want 2", code)
	}
}
