namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// open_by_handle_at(2) with a btrfs file handle: the top directory of a subvolume by its id, also one no
    /// mount reaches (CAP_DAC_READ_SEARCH).
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>
        /// FILEID_BTRFS_WITHOUT_PARENT (include/linux/exportfs.h, not in the uapi headers): a handle of an
        /// inode's objectid, its subvolume's id and its generation (fs/btrfs/export.c, btrfs_fh_to_dentry).
        /// </summary>
        internal const int FILEID_BTRFS_WITHOUT_PARENT = 0x4d;

        /// <summary>ESTALE: the handle names nothing (the generation does not match, or the inode is gone).</summary>
        internal const int ESTALE = 116;

        /// <summary>
        /// struct file_handle (handle_bytes, handle_type) followed by the first three fields of the packed
        /// struct btrfs_fid (fs/btrfs/export.h): objectid, root_objectid, gen; 20 bytes of handle
        /// (BTRFS_FID_SIZE_NON_CONNECTABLE, 5 words).
        /// </summary>
        [StructLayout(LayoutKind.Sequential, Pack = 1)]
        internal struct BtrfsFileHandle
        {
            public uint HandleBytes;
            public int HandleType;
            public ulong ObjectId;
            public ulong RootObjectId;
            public uint Generation;
        }

        /// <summary>open_by_handle_at(2) relative to any descriptor on the filesystem; same contract as <see cref="Open"/>.</summary>
        internal static unsafe SafeFileDescriptor OpenByHandleAt(SafeFileDescriptor mountFd, BtrfsFileHandle* handle, int flags) => Wrap(OpenByHandleAtRaw(mountFd, handle, flags));

        [LibraryImport(Name, EntryPoint = "open_by_handle_at", SetLastError = true)]
        private static unsafe partial int OpenByHandleAtRaw(SafeFileDescriptor mountFd, BtrfsFileHandle* handle, int flags);
    }
}
