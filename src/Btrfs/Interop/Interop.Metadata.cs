namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>Ownership, mode and timestamps of an open file or of a name in an open directory: fchown(2), fchmod(2), futimens(3), fchownat(2), utimensat(2).</summary>
    internal static partial class Libc
    {
        /// <summary>struct timespec on 64-bit Linux.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct TimeSpec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        /// <summary>setfsuid(2): with an id that cannot be set (-1) it changes nothing and returns the calling thread's filesystem user id (the owner its new files get).</summary>
        [LibraryImport(Name, EntryPoint = "setfsuid")]
        internal static partial uint SetFsUid(uint fsuid);

        [LibraryImport(Name, EntryPoint = "fchown", SetLastError = true)]
        internal static partial int FChown(SafeFileDescriptor fd, uint owner, uint group);

        [LibraryImport(Name, EntryPoint = "fchmod", SetLastError = true)]
        internal static partial int FChmod(SafeFileDescriptor fd, uint mode);

        /// <summary>fchownat(2) (with AT_SYMLINK_NOFOLLOW: a symbolic link's own owner), relative to an open directory.</summary>
        [LibraryImport(Name, EntryPoint = "fchownat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int FChownAt(SafeFileDescriptor dirfd, string path, uint owner, uint group, int flags);

        /// <summary>utimensat(2) relative to an open directory (with AT_SYMLINK_NOFOLLOW: a symbolic link's own times).</summary>
        [LibraryImport(Name, EntryPoint = "utimensat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial int UtimensAt(SafeFileDescriptor dirfd, string path, TimeSpec* times, int flags);

        /// <summary>futimens(fd, times): times[0] is the access time, times[1] the modification time.</summary>
        [LibraryImport(Name, EntryPoint = "futimens", SetLastError = true)]
        internal static unsafe partial int FUtimens(SafeFileDescriptor fd, TimeSpec* times);
    }
}
