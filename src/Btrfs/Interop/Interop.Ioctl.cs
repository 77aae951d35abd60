namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>ioctl(2). The request is an unsigned long: pass it as nuint so 0xC0000000-style values are not sign-extended.</summary>
    internal static partial class Libc
    {
        [LibraryImport(Name, EntryPoint = "ioctl", SetLastError = true)]
        internal static unsafe partial int Ioctl(SafeFileDescriptor fd, nuint request, void* arg);
    }
}
