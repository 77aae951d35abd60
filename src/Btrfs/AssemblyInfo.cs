// The module runs on Linux only: its interop is the Linux kernel's.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
