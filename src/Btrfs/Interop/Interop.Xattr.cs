namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>Extended attributes of an open file (POSIX ACLs are the system.posix_acl_* attributes).</summary>
    internal static partial class Libc
    {
        internal const int ENODATA = 61;
        internal const int ERANGE = 34;

        [LibraryImport(Name, EntryPoint = "flistxattr", SetLastError = true)]
        internal static unsafe partial nint FListXattr(SafeFileDescriptor fd, byte* list, nuint size);

        [LibraryImport(Name, EntryPoint = "fgetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial nint FGetXattr(SafeFileDescriptor fd, string name, byte* value, nuint size);

        /// <summary>getxattr(2) by path, following links: on "/proc/self/fd/N" of an O_PATH descriptor, the file's attribute without opening the file.</summary>
        [LibraryImport(Name, EntryPoint = "getxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial nint GetXattr(string path, string name, byte* value, nuint size);

        [LibraryImport(Name, EntryPoint = "fsetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static unsafe partial int FSetXattr(SafeFileDescriptor fd, string name, byte* value, nuint size, int flags);

        [LibraryImport(Name, EntryPoint = "fremovexattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int FRemoveXattr(SafeFileDescriptor fd, string name);
    }
}
