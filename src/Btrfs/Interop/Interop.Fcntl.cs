namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>fcntl(2) with an int argument: leases (F_SETLEASE, F_GETLEASE), the lease-break signal (F_SETSIG), F_DUPFD_CLOEXEC, the status flags (F_GETFL, F_SETFL).</summary>
    internal static partial class Libc
    {
        internal const int F_GETFL = 3;
        internal const int F_SETFL = 4;
        internal const int F_DUPFD_CLOEXEC = 1030;
        internal const int F_SETSIG = 10;
        internal const int F_GETSIG = 11;
        internal const int F_SETLEASE = 1024;
        internal const int F_GETLEASE = 1025;

        /// <summary>Lease types (the F_*LCK lock types).</summary>
        internal const int F_RDLCK = 0;
        internal const int F_WRLCK = 1;
        internal const int F_UNLCK = 2;

        /// <summary>SIGURG: its default action is to ignore it, on x86_64 and arm64 alike (23 on both).</summary>
        internal const int SIGURG = 23;

        /// <summary>fcntl(fd, cmd, arg) for the commands whose argument is an int.</summary>
        [LibraryImport(Name, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(SafeFileDescriptor fd, int cmd, int arg);

        /// <summary>renameat2 flag: swap the two names atomically (both must exist).</summary>
        internal const uint RENAME_EXCHANGE = 2;

        /// <summary>renameat2 flag: fail with EEXIST instead of replacing the new name.</summary>
        internal const uint RENAME_NOREPLACE = 1;

        [LibraryImport(Name, EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int RenameAt2(SafeFileDescriptor olddirfd, string oldpath, SafeFileDescriptor newdirfd, string newpath, uint flags);
    }
}
