namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>open(2) and close(2).</summary>
    internal static partial class Libc
    {
        internal const int O_RDONLY = 0x0;
        internal const int O_NONBLOCK = 0x800;
        internal const int O_CLOEXEC = 0x80000;

        /// <summary>
        /// open(2), returning an owned descriptor; check <see cref="SafeHandle.IsInvalid"/> and errno.
        /// (open returns a 32-bit int: marshalling it straight into a SafeHandle would turn -1 into
        /// 0xFFFFFFFF, a "valid" handle.)
        /// </summary>
        internal static SafeFileDescriptor Open(string path, int flags, int mode)
        {
            var handle = new SafeFileDescriptor();
            int fd = OpenRaw(path, flags, mode);
            int errno = Marshal.GetLastPInvokeError();
            handle.SetDescriptor(fd);
            Marshal.SetLastPInvokeError(errno);
            return handle;
        }

        [LibraryImport(Name, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        private static partial int OpenRaw(string path, int flags, int mode);

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
