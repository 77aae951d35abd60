[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// One collection per test class except the filesystem collection; PowerShell runspaces run on the
// calling thread, so parallel classes are fine.
[assembly: Xunit.CollectionBehavior(Xunit.CollectionBehavior.CollectionPerClass)]
