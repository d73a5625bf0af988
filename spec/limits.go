package spec

// Limits shared by the configuration and the hive's API, so that a file
// that validates is never refused by a hive.
const (
	// DefaultHivePort is the port a hive listens on unless told otherwise.
	DefaultHivePort = 9200
	// MaxNameLen is the longest model name or worker id a hive accepts.
	MaxNameLen = 64
)
