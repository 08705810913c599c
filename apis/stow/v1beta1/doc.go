// Package v1beta1 is the stow.dev/v1beta1 API: Repository, BackupConfiguration,
// BackupSession, RestoreSession (namespaced) and Task, Function (cluster-scoped).
//
// Field names, condition types, reasons and phases follow Stash's v1beta1 API so
// that a Stash manifest migrates by changing only its apiVersion.
//
// +k8s:deepcopy-gen=package
// +groupName=stow.dev
package v1beta1
