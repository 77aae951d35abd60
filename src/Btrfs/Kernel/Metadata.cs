namespace Btrfs.Kernel
{
    using Btrfs.Interop;

    /// <summary>Owner, mode and times of an open file (fchown, fchmod, futimens) or of a name in an open directory, never following a link (fchownat, utimensat).</summary>
    internal static class Metadata
    {
        /// <summary>The user the calling thread acts as on files (its filesystem user id: the effective one unless set apart), the owner its new files get.</summary>
        internal static uint FileSystemUserId => Libc.SetFsUid(uint.MaxValue);

        internal static void SetOwner(SafeFileDescriptor fd, uint uid, uint gid, string path, string what, string? advice = null) =>
            Errno.Check(Libc.FChown(fd, uid, gid), "fchown", path, what, advice);

        /// <summary>fchown; 0 or the errno (uint.MaxValue leaves the owner or the group as it is).</summary>
        internal static int TrySetOwner(SafeFileDescriptor fd, uint uid, uint gid) =>
            Libc.FChown(fd, uid, gid) == 0 ? 0 : Errno.Last;

        /// <summary>fchownat(AT_SYMLINK_NOFOLLOW): the link itself; 0 or the errno.</summary>
        internal static int TrySetOwnerAt(SafeFileDescriptor dir, string name, uint uid, uint gid) =>
            Libc.FChownAt(dir, name, uid, gid, Libc.AT_SYMLINK_NOFOLLOW) == 0 ? 0 : Errno.Last;

        internal static void SetMode(SafeFileDescriptor fd, uint mode, string path, string what, string? advice = null) =>
            Errno.Check(Libc.FChmod(fd, mode), "fchmod", path, what, advice);

        /// <summary>Access and modification times (futimens); the change time is the kernel's.</summary>
        internal static unsafe void SetTimes(SafeFileDescriptor fd, FileTime access, FileTime modify, string path, string what, string? advice = null)
        {
            Libc.TimeSpec* times = stackalloc Libc.TimeSpec[2];
            times[0] = new Libc.TimeSpec { Seconds = access.Seconds, Nanoseconds = access.Nanoseconds };
            times[1] = new Libc.TimeSpec { Seconds = modify.Seconds, Nanoseconds = modify.Nanoseconds };
            Errno.Check(Libc.FUtimens(fd, times), "futimens", path, what, advice);
        }

        /// <summary>Access and modification times of a name in an open directory, the link itself for a symbolic link (utimensat AT_SYMLINK_NOFOLLOW).</summary>
        internal static unsafe void SetTimesAt(SafeFileDescriptor dir, string name, FileTime access, FileTime modify, string path, string what)
        {
            Libc.TimeSpec* times = stackalloc Libc.TimeSpec[2];
            times[0] = new Libc.TimeSpec { Seconds = access.Seconds, Nanoseconds = access.Nanoseconds };
            times[1] = new Libc.TimeSpec { Seconds = modify.Seconds, Nanoseconds = modify.Nanoseconds };
            Errno.Check(Libc.UtimensAt(dir, name, times, Libc.AT_SYMLINK_NOFOLLOW), "utimensat", path, what);
        }
    }
}
