namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>opendir(3), fdopendir(3), readdir64(3), closedir(3): directory entries with their d_type, so listing never opens or stats an entry.</summary>
    internal static partial class Libc
    {
        internal const byte DT_UNKNOWN = 0;
        internal const byte DT_FIFO = 1;
        internal const byte DT_CHR = 2;
        internal const byte DT_DIR = 4;
        internal const byte DT_BLK = 6;
        internal const byte DT_REG = 8;
        internal const byte DT_LNK = 10;
        internal const byte DT_SOCK = 12;

        /// <summary>struct dirent64 (glibc and musl, x86_64 and arm64): the name starts at byte 19.</summary>
        internal const int DirentTypeOffset = 18;
        internal const int DirentNameOffset = 19;

        [LibraryImport(Name, EntryPoint = "opendir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial SafeDirectoryStream OpenDir(string path);

        /// <summary>fdopendir(3): a stream over an open directory descriptor, which the stream then owns (closedir closes it).</summary>
        [LibraryImport(Name, EntryPoint = "fdopendir", SetLastError = true)]
        internal static partial SafeDirectoryStream FdOpenDir(int fd);

        /// <summary>The next entry, or null at the end (errno unchanged) or on error (errno set): clear errno first.</summary>
        [LibraryImport(Name, EntryPoint = "readdir64", SetLastError = true)]
        internal static unsafe partial byte* ReadDir(SafeDirectoryStream dir);

        /// <summary>rewinddir(3): the stream reads from the directory's start again, as it is now.</summary>
        [LibraryImport(Name, EntryPoint = "rewinddir")]
        internal static partial void RewindDir(SafeDirectoryStream dir);

        [LibraryImport(Name, EntryPoint = "closedir", SetLastError = true)]
        internal static partial int CloseDir(nint dir);
    }

    /// <summary>A DIR* closed exactly once.</summary>
    internal sealed class SafeDirectoryStream : SafeHandle
    {
        public SafeDirectoryStream()
            : base(nint.Zero, ownsHandle: true)
        {
        }

        public override bool IsInvalid => handle == nint.Zero;

        protected override bool ReleaseHandle() => Libc.CloseDir(handle) == 0;
    }
}
