namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>open(2), openat(2) and close(2), with the open flags of x86_64 and arm64 (they differ for four flags).</summary>
    internal static partial class Libc
    {
        internal const int O_RDONLY = 0x0;
        internal const int O_WRONLY = 0x1;
        internal const int O_RDWR = 0x2;
        internal const int O_CREAT = 0x40;
        internal const int O_EXCL = 0x80;
        internal const int O_NOCTTY = 0x100;
        internal const int O_NONBLOCK = 0x800;
        internal const int O_CLOEXEC = 0x80000;

        /// <summary>Reads do not update the access time (owner or CAP_FOWNER only; EPERM otherwise).</summary>
        internal const int O_NOATIME = 0x40000;

        /// <summary>Not followed: a symbolic link as the last component fails with ELOOP.</summary>
        internal static readonly int O_NOFOLLOW = IsArm64 ? 0x8000 : 0x20000;

        internal static readonly int O_DIRECTORY = IsArm64 ? 0x4000 : 0x10000;

        /// <summary>Reads go to the device, past the page cache (buffers, offsets and sizes aligned to the logical block size).</summary>
        internal static readonly int O_DIRECT = IsArm64 ? 0x10000 : 0x4000;

        /// <summary>O_TMPFILE = __O_TMPFILE (0x400000) | O_DIRECTORY: an unnamed file in the given directory.</summary>
        internal static readonly int O_TMPFILE = 0x400000 | O_DIRECTORY;

        private static bool IsArm64 => RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

        /// <summary>
        /// open(2), returning an owned descriptor; check <see cref="SafeHandle.IsInvalid"/> and errno.
        /// (open returns a 32-bit int: marshalling it straight into a SafeHandle would turn -1 into
        /// 0xFFFFFFFF, a "valid" handle.)
        /// </summary>
        internal static SafeFileDescriptor Open(string path, int flags, int mode) => Wrap(OpenRaw(path, flags, mode));

        /// <summary>openat(2) relative to an open directory; same contract as <see cref="Open"/>.</summary>
        internal static SafeFileDescriptor OpenAt(SafeFileDescriptor dir, string path, int flags, int mode) => Wrap(OpenAtRaw(dir, path, flags, mode));

        private static SafeFileDescriptor Wrap(int fd)
        {
            int errno = Marshal.GetLastPInvokeError();
            var handle = new SafeFileDescriptor();
            handle.SetDescriptor(fd);
            Marshal.SetLastPInvokeError(errno);
            return handle;
        }

        [LibraryImport(Name, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static partial int OpenRaw(string path, int flags, int mode);

        [LibraryImport(Name, EntryPoint = "openat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static partial int OpenAtRaw(SafeFileDescriptor dirfd, string path, int flags, int mode);

        [LibraryImport(Name, EntryPoint = "close", SetLastError = true)]
        internal static partial int Close(int fd);
    }

    /// <summary>A file descriptor that is closed exactly once, when disposed or finalized.</summary>
    internal sealed class SafeFileDescriptor : SafeHandle
    {
        public SafeFileDescriptor()
            : base(invalidHandleValue: new System.IntPtr(-1), ownsHandle: true)
        {
        }

        internal void SetDescriptor(int fd) => SetHandle(new System.IntPtr(fd));

        /// <summary>The raw descriptor; valid while this handle is alive.</summary>
        internal int Fd => (int)handle;

        // fd 0 is a valid descriptor, so only -1 counts as invalid.
        public override bool IsInvalid => handle == new System.IntPtr(-1);

        protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
    }
}
