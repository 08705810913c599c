package hook

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// slackBody is the body of Stash's Slack notification guide, verbatim.
const slackBody = `{{- $msg := dict  "type" "mrkdwn" "text" (printf ":x: Backup failed for %s/%s Reason: %s." .Namespace .Target.Name .Status.Error) -}}
{
  "blocks": [
      {
        "type": "section",
        "text": {{ toJson $msg }}
      }
    ]
}
`

func summary(phase, errMsg string) Summary {
	return Summary{
		Name: "db-backup-1700000000", Namespace: "demo",
		Invoker: Ref{ApiVersion: "stow.dev/v1beta1", Kind: "BackupConfiguration", Name: "db-backup"},
		Target:  Ref{ApiVersion: "v1", Kind: "PersistentVolumeClaim", Name: "db-data"},
		Status:  Status{Phase: phase, Duration: "12s", Error: errMsg},
		Snapshots: []v1beta1.SnapshotStats{{Name: "3f2a1b0c", Path: "/stow-data", TotalSize: "1.2 MiB",
			FileStats: v1beta1.FileStats{TotalFiles: ptr(int64(40))}}},
	}
}

func ptr[T any](v T) *T { return &v }

func TestSlackGuideBodyRendersToItsMessage(t *testing.T) {
	h := v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{Body: slackBody}}
	out, err := Render(h, summary("Failed", `step pvc-backup-0 failed: "quoted" & <tagged>`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(out.HTTPPost.Body), &got); err != nil {
		t.Fatalf("rendered body is not JSON: %v\n%s", err, out.HTTPPost.Body)
	}
	want := `:x: Backup failed for demo/db-data Reason: step pvc-backup-0 failed: "quoted" & <tagged>.`
	if len(got.Blocks) != 1 || got.Blocks[0].Type != "section" || got.Blocks[0].Text.Type != "mrkdwn" || got.Blocks[0].Text.Text != want {
		t.Fatalf("rendered %+v, want one section with mrkdwn text %q", got, want)
	}
	if h.HTTPPost.Body != slackBody {
		t.Fatal("Render changed its input")
	}
}

func TestSlackGuideAlwaysVariantShowsPhase(t *testing.T) {
	body := `{{- $msg := dict "type" "mrkdwn" "text" (printf "Backup %s for %s/%s" .Status.Phase .Namespace .Target.Name) -}}
{"blocks": [{"type": "section", "text": {{ toJson $msg }}}]}`
	for _, phase := range []string{"Succeeded", "Failed"} {
		out, err := Render(v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{Body: body}}, summary(phase, ""))
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid([]byte(out.HTTPPost.Body)) || !strings.Contains(out.HTTPPost.Body, "Backup "+phase+" for demo/db-data") {
			t.Fatalf("%s: %s", phase, out.HTTPPost.Body)
		}
	}
}

func TestRenderFields(t *testing.T) {
	h := v1beta1.Handler{
		HTTPPost: &v1beta1.HTTPPostAction{
			HTTPGetAction: v1beta1.HTTPGetAction{Host: "h", Path: "/n/{{ .Namespace }}",
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Session", Value: "{{ .Name }}"}}},
			Form: []v1beta1.FormEntry{{Key: "snap", Values: []string{"{{ (index .Snapshots 0).Name }}", "{{ upper .Invoker.Kind }}"}}},
		},
	}
	out, err := Render(h, summary("Succeeded", ""))
	if err != nil {
		t.Fatal(err)
	}
	p := out.HTTPPost
	if p.Path != "/n/demo" || p.HTTPHeaders[0].Value != "db-backup-1700000000" || p.Form[0].Values[0] != "3f2a1b0c" || p.Form[0].Values[1] != "BACKUPCONFIGURATION" {
		t.Fatalf("rendered %+v", p)
	}
	ex, err := Render(v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo {{ .Status.Phase }} > /data/hook"}}}, summary("Running", ""))
	if err != nil || ex.Exec.Command[2] != "echo Running > /data/hook" {
		t.Fatalf("exec: %v %v", ex.Exec, err)
	}
}

func TestRenderErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		h    v1beta1.Handler
		want string
	}{
		{v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{Body: "{{ .Nope }}"}}, "template of httpPost.body"},
		{v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{Body: "{{ if }}"}}, "template of httpPost.body"},
		{v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"x", "{{ fail \"boom\" }}"}}}, "template of exec.command[1]"},
	} {
		_, err := Render(tc.h, summary("Failed", ""))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
}

func TestShouldRun(t *testing.T) {
	ok, failed := Outcome{}, Outcome{Failed: true}
	retry := Outcome{Failed: true, RetriesLeft: 2}
	for _, tc := range []struct {
		policy v1beta1.HookExecutionPolicy
		o      Outcome
		run    bool
	}{
		{"", ok, true}, {"", failed, true},
		{v1beta1.ExecuteAlways, ok, true}, {v1beta1.ExecuteAlways, failed, true},
		{v1beta1.ExecuteOnSuccess, ok, true}, {v1beta1.ExecuteOnSuccess, failed, false},
		{v1beta1.ExecuteOnFailure, ok, false}, {v1beta1.ExecuteOnFailure, failed, true}, {v1beta1.ExecuteOnFailure, retry, true},
		{v1beta1.ExecuteOnFinalRetryFailure, ok, false}, {v1beta1.ExecuteOnFinalRetryFailure, retry, false},
		{v1beta1.ExecuteOnFinalRetryFailure, failed, true},
	} {
		run, why := ShouldRun(tc.policy, tc.o)
		if run != tc.run || (!run && why == "") {
			t.Errorf("%q after %+v: run=%v why=%q, want run=%v", tc.policy, tc.o, run, why, tc.run)
		}
	}
}

type recorded struct {
	method, path, ctype, header string
	body                        string
	form                        url.Values
}

func server(t *testing.T, status int) (*httptest.Server, chan recorded) {
	got := make(chan recorded, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{method: r.Method, path: r.URL.RequestURI(), ctype: r.Header.Get("Content-Type"), header: r.Header.Get("X-Token"), body: string(b)}
		rec.form, _ = url.ParseQuery(string(b))
		got <- rec
		w.WriteHeader(status)
		_, _ = w.Write([]byte("nope: bad token"))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func hostPortOf(t *testing.T, raw string) (string, intstr.IntOrString) {
	u, _ := url.Parse(raw)
	h, p, _ := net.SplitHostPort(u.Host)
	n, _ := strconv.Atoi(p)
	return h, intstr.FromInt32(int32(n))
}

func TestRunHTTP(t *testing.T) {
	srv, got := server(t, http.StatusOK)
	host, port := hostPortOf(t, srv.URL)
	get := v1beta1.HTTPGetAction{Host: host, Port: port, Path: "/ping?x=1", HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Token", Value: "t"}}}
	if err := Run(context.Background(), v1beta1.Handler{HTTPGet: &get}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != "GET" || r.path != "/ping?x=1" || r.header != "t" {
		t.Fatalf("server saw %+v", r)
	}
	post := v1beta1.HTTPPostAction{HTTPGetAction: v1beta1.HTTPGetAction{Host: host, Port: port, Path: "/hook",
		HTTPHeaders: []corev1.HTTPHeader{{Name: "Content-Type", Value: "application/json"}}}, Body: `{"a":1}`}
	if err := Run(context.Background(), v1beta1.Handler{HTTPPost: &post}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.method != "POST" || r.body != `{"a":1}` || r.ctype != "application/json" {
		t.Fatalf("server saw %+v", r)
	}
	form := v1beta1.HTTPPostAction{HTTPGetAction: v1beta1.HTTPGetAction{Host: host, Port: port},
		Form: []v1beta1.FormEntry{{Key: "k", Values: []string{"v1", "v2"}}}}
	if err := Run(context.Background(), v1beta1.Handler{HTTPPost: &form}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.ctype != "application/x-www-form-urlencoded" || strings.Join(r.form["k"], ",") != "v1,v2" {
		t.Fatalf("server saw %+v", r)
	}
}

func TestRunHTTPStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		ok     bool
	}{{204, true}, {302, true}, {399, true}, {404, false}, {500, false}} {
		srv, got := server(t, tc.status)
		host, port := hostPortOf(t, srv.URL)
		err := Run(context.Background(), v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: host, Port: port, Path: "/services/SECRET"}}, time.Minute)
		<-got
		if (err == nil) != tc.ok {
			t.Fatalf("status %d: err %v", tc.status, err)
		}
		if err != nil && (!strings.Contains(err.Error(), strconv.Itoa(tc.status)) || strings.Contains(err.Error(), "SECRET") ||
			!strings.Contains(err.Error(), "nope: bad token")) {
			t.Fatalf("status %d: message %q should name the status and body but not the path", tc.status, err)
		}
	}
}

func TestRunHTTPTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	host, port := hostPortOf(t, srv.URL)
	err := Run(context.Background(), v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: host, Port: port}}, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("got %v, want a timeout", err)
	}
}

func TestRunTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	tcp := corev1.TCPSocketAction{Host: "127.0.0.1", Port: intstr.FromInt32(int32(addr.Port))}
	if err := Run(context.Background(), v1beta1.Handler{TCPSocket: &tcp}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := Run(context.Background(), v1beta1.Handler{TCPSocket: &tcp}, time.Minute); err == nil {
		t.Fatal("a closed port succeeded")
	}
}

func TestRunRefusesWhatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		h    v1beta1.Handler
		want string
	}{
		{v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Port: intstr.FromInt32(80)}}, "httpGet.host is required"},
		{v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: "x", Port: intstr.FromString("http")}}, "port number"},
		{v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: "x", Port: intstr.FromInt32(80), Scheme: "FTP"}}, "HTTP or HTTPS"},
		{v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"true"}}}, "application's pods"},
		{v1beta1.Handler{}, "none of"},
	} {
		err := Run(context.Background(), tc.h, time.Second)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}
