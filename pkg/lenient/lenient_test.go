package lenient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
)

// Values the CRD schema of a stored object may hold (admitted by an older
// or loosened CRD, or accepted by a format Go reads more strictly) that
// client-go cannot decode into the Go types: each is a class that once made
// a whole List fail.
var unreadable = []struct {
	name, kind, list, item, field string
}{
	{"int32 overflow", "BackupSession", "backupsessions",
		`{"apiVersion":"stow.dev/v1beta1","kind":"BackupSession","metadata":{"name":"bad","namespace":"n","resourceVersion":"7"},"spec":{"invoker":{"name":"bc"},"retryLeft":99999999999},"status":{"phase":"Pending"}}`,
		"spec.retryLeft"},
	{"time without zone", "Snapshot", "snapshots",
		`{"apiVersion":"stow.dev/v1beta1","kind":"Snapshot","metadata":{"name":"bad","namespace":"n"},"spec":{"id":"x","time":"2026-01-02T03:04:05","repository":{"name":"r"},"invoker":{"name":"bc"},"target":{"name":"d"}}}`,
		"spec.time"},
	{"port out of int32 in a probe", "BackupConfiguration", "backupconfigurations",
		`{"apiVersion":"stow.dev/v1beta1","kind":"BackupConfiguration","metadata":{"name":"bad","namespace":"n"},"spec":{"schedule":"@daily","repository":{"name":"r"},"retentionPolicy":{"name":"k","prune":true},"runtimeSettings":{"container":{"livenessProbe":{"tcpSocket":{"port":99999999999}}}}},"status":{"phase":"Ready"}}`,
		"spec.runtimeSettings.container.livenessProbe.tcpSocket.port"},
	{"bad quantity", "RestoreSession", "restoresessions",
		`{"apiVersion":"stow.dev/v1beta1","kind":"RestoreSession","metadata":{"name":"bad","namespace":"n"},"spec":{"repository":{"name":"r"},"tempDir":{"sizeLimit":"lots"}}}`,
		"spec.tempDir.sizeLimit"},
	{"string in a number", "Repository", "repositories",
		`{"apiVersion":"stow.dev/v1beta1","kind":"Repository","metadata":{"name":"bad","namespace":"n"},"spec":{"backend":{"storageSecretName":"s","gcs":{"bucket":"b","maxConnections":"many"}}}}`,
		"spec.backend.gcs.maxConnections"},
}

func good(kind string) string {
	return fmt.Sprintf(`{"apiVersion":"stow.dev/v1beta1","kind":%q,"metadata":{"name":"good","namespace":"n"}}`, kind)
}

// server answers a List of plural with [good, bad, good2] and a Watch
// with an ADDED event of bad then of good.
func server(t *testing.T, kind, plural, bad string) *httptest.Server {
	g2 := strings.Replace(good(kind), `"good"`, `"good2"`, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/"+plural) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("watch") == "true" {
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", bad)
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", good(kind))
			return
		}
		fmt.Fprintf(w, `{"apiVersion":"stow.dev/v1beta1","kind":"%sList","metadata":{"resourceVersion":"42"},"items":[%s,%s,%s]}`, kind, good(kind), bad, g2)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// list lists kind with c and returns the items' metadata.
func list(ctx context.Context, c versioned.Interface, kind string) (string, []metav1.Object, error) {
	s := c.StowV1beta1()
	var out []metav1.Object
	var rv string
	add := func(n int, get func(int) metav1.Object) {
		for i := 0; i < n; i++ {
			out = append(out, get(i))
		}
	}
	switch kind {
	case "BackupSession":
		l, err := s.BackupSessions("n").List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", nil, err
		}
		rv = l.ResourceVersion
		add(len(l.Items), func(i int) metav1.Object { return &l.Items[i] })
	case "Snapshot":
		l, err := s.Snapshots("n").List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", nil, err
		}
		rv = l.ResourceVersion
		add(len(l.Items), func(i int) metav1.Object { return &l.Items[i] })
	case "BackupConfiguration":
		l, err := s.BackupConfigurations("n").List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", nil, err
		}
		rv = l.ResourceVersion
		add(len(l.Items), func(i int) metav1.Object { return &l.Items[i] })
	case "RestoreSession":
		l, err := s.RestoreSessions("n").List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", nil, err
		}
		rv = l.ResourceVersion
		add(len(l.Items), func(i int) metav1.Object { return &l.Items[i] })
	case "Repository":
		l, err := s.Repositories("n").List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", nil, err
		}
		rv = l.ResourceVersion
		add(len(l.Items), func(i int) metav1.Object { return &l.Items[i] })
	}
	return rv, out, nil
}

func TestOneUnreadableObjectDoesNotFailTheList(t *testing.T) {
	ctx := context.Background()
	for _, tc := range unreadable {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, tc.kind, tc.list, tc.item)
			cfg := &rest.Config{Host: srv.URL}

			// The plain clientset fails the whole List: the problem.
			plain, err := versioned.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := list(ctx, plain, tc.kind); err == nil {
				t.Fatalf("the plain client decoded the list; the case does not reproduce the failure")
			}

			c, err := NewClientset(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rv, items, err := list(ctx, c, tc.kind)
			if err != nil {
				t.Fatalf("lenient List failed: %v", err)
			}
			if rv != "42" || len(items) != 3 {
				t.Fatalf("resourceVersion %q, %d items; want 42 and 3", rv, len(items))
			}
			for i, want := range []string{"good", "bad", "good2"} {
				o := items[i]
				if o.GetName() != want || o.GetNamespace() != "n" {
					t.Fatalf("item %d = %s/%s, want n/%s", i, o.GetNamespace(), o.GetName(), want)
				}
				msg := v1beta1.DecodeError(o)
				if (msg != "") != (want == "bad") {
					t.Fatalf("item %s: decode error %q", want, msg)
				}
				if want == "bad" && !strings.Contains(msg, "(field "+tc.field+")") {
					t.Errorf("decode error does not name %s: %s", tc.field, msg)
				}
			}
		})
	}
}

func TestStandInKeepsReadableStatus(t *testing.T) {
	srv := server(t, "BackupSession", "backupsessions", unreadable[0].item)
	c, err := NewClientset(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.StowV1beta1().BackupSessions("n").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := l.Items[1]
	if bad.ResourceVersion != "7" || bad.Status.Phase != v1beta1.BackupSessionPending || bad.Spec.Invoker.Name != "" {
		t.Errorf("stand-in: rv %q phase %q invoker %q; want rv 7, status kept, no spec", bad.ResourceVersion, bad.Status.Phase, bad.Spec.Invoker.Name)
	}
}

func TestWatchDeliversUnreadableObjectAsStandIn(t *testing.T) {
	tc := unreadable[0]
	srv := server(t, tc.kind, tc.list, tc.item)
	c, err := NewClientset(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := c.StowV1beta1().BackupSessions("n").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for ev := range w.ResultChan() {
		s, ok := ev.Object.(*v1beta1.BackupSession)
		if !ok {
			t.Fatalf("event %s: %T %+v", ev.Type, ev.Object, ev.Object)
		}
		got = append(got, fmt.Sprintf("%s:%t", s.Name, v1beta1.DecodeError(s) != ""))
		if len(got) == 2 {
			break
		}
	}
	if strings.Join(got, ",") != "bad:true,good:false" {
		t.Fatalf("watch events %v; want the stand-in of bad, then good", got)
	}
}
