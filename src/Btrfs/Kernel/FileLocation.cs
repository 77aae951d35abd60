namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>
    /// A name in an open directory: how the walker hands out what it found, so that every later step
    /// opens it relative to the directory it was listed in, with O_NOFOLLOW, instead of resolving its
    /// path again (where a directory swapped for a symbolic link would lead somewhere else).
    /// <see cref="Directory"/> is the walker's and valid while the entry is being handled; keep it
    /// longer with <see cref="SafeHandle.DangerousAddRef"/>.
    /// </summary>
    internal readonly record struct FileLocation(SafeFileDescriptor Directory, string Name, string Path)
    {
        /// <summary>
        /// The inode number the directory listed the name with (d_ino), 0 when not known. Only a hint
        /// for reading many files' metadata at once: the name may lead elsewhere by the time it is used.
        /// </summary>
        internal ulong Inode { get; init; }
    }
}
