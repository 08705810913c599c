package hookrun

import (
	"bytes"
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// PodExec is the Execer of the operator: pods/exec through the API server
// (WebSocket, falling back to SPDY).
type PodExec struct {
	Config *rest.Config
	Kube   kubernetes.Interface
}

// maxOutput bounds what is kept of a command's output.
const maxOutput = 64 << 10

// Exec runs command in container of pod and returns its output.
func (p PodExec) Exec(ctx context.Context, namespace, pod, container string, command []string) (string, string, error) {
	req := p.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", req.URL().String())
	if err != nil {
		return "", "", fmt.Errorf("exec: %v", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(p.Config, "POST", req.URL())
	if err != nil {
		return "", "", fmt.Errorf("exec: %v", err)
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		return "", "", fmt.Errorf("exec: %v", err)
	}
	stdout, stderr := &capped{}, &capped{}
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: stdout, Stderr: stderr})
	return stdout.String(), stderr.String(), err
}

// capped keeps the first maxOutput bytes written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(b []byte) (int, error) {
	if room := maxOutput - c.Len(); room > 0 {
		c.Buffer.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
