namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>fsync(2).</summary>
    internal static partial class Libc
    {
        [LibraryImport(Name, EntryPoint = "fsync", SetLastError = true)]
        internal static partial int FSync(SafeFileDescriptor fd);
    }
}
