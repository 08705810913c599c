package metrics

import (
	"context"
	"errors"

	"github.com/stowhq/stow/pkg/jobresult"
)

// JobLabels identify what a Job's metrics are about.
type JobLabels struct {
	InvokerKind, InvokerName, Namespace string // invoker
	Repository, RepositoryNamespace     string // repository name and namespace
	TargetKind, TargetName              string // target
	Host                                string // restic host
	Backend, Bucket, Prefix             string // repository backend
}

var errNotImplemented = errors.New("metrics: not implemented yet")

// PushBackupHost pushes the host backup families for one backup step result.
func PushBackupHost(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	return errNotImplemented
}

// PushRepository pushes the repository families after retention and check.
func PushRepository(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	return errNotImplemented
}

// PushRestoreHost pushes the host restore families for one restore result.
func PushRestoreHost(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	return errNotImplemented
}
