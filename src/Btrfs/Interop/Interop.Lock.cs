namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>Advisory whole-file locks (flock).</summary>
    internal static partial class Libc
    {
        /// <summary>flock: an exclusive lock.</summary>
        internal const int LOCK_EX = 2;

        /// <summary>flock: fail with EWOULDBLOCK instead of waiting.</summary>
        internal const int LOCK_NB = 4;

        /// <summary>flock(2) on the open file description behind the descriptor: held until every duplicate is closed (or the process dies).</summary>
        [LibraryImport(Name, EntryPoint = "flock", SetLastError = true)]
        internal static partial int Flock(SafeFileDescriptor fd, int operation);
    }
}
