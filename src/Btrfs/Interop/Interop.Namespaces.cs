namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>setns(2) and unshare(2), for reading another mount namespace's mount table from a thread of this process.</summary>
    internal static partial class Libc
    {
        /// <summary>O_PATH: a descriptor that only names the file (nothing of it is opened: no device is opened, no FIFO waited on).</summary>
        internal const int O_PATH = 0x200000;

        /// <summary>The mount namespace (sched.h).</summary>
        internal const int CLONE_NEWNS = 0x00020000;

        /// <summary>The filesystem attributes: root, working directory, umask (sched.h).</summary>
        internal const int CLONE_FS = 0x00000200;

        /// <summary>nsfs (include/uapi/linux/magic.h): namespace files, /proc/PID/ns/* and bind mounts of them.</summary>
        internal const long NSFS_MAGIC = 0x6e736673;

        /// <summary>_IO(0xb7, 0x3): the type of a namespace file (a CLONE_NEW* value).</summary>
        internal const uint NS_GET_NSTYPE = 0xb703;

        [LibraryImport(Name, EntryPoint = "setns", SetLastError = true)]
        internal static partial int SetNamespace(SafeFileDescriptor fd, int nstype);

        [LibraryImport(Name, EntryPoint = "unshare", SetLastError = true)]
        internal static partial int Unshare(int flags);
    }
}
