namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Carries an inode's identity-free metadata to its copy: owner and group, mode, extended
    /// attributes (POSIX ACLs, security labels and capabilities included), usage flags, and access
    /// and modification times, in the order that keeps each one (chown clears setuid bits and file
    /// capabilities, so it comes first; times come last).
    /// </summary>
    internal static class MetadataCopy
    {
        /// <summary>The POSIX access ACL's extended attribute.</summary>
        internal const string AccessAcl = "system.posix_acl_access";

        /// <summary>A directory's POSIX default ACL's extended attribute (what new entries in it inherit).</summary>
        internal const string DefaultAcl = "system.posix_acl_default";

        /// <summary>
        /// Owner, group, mode and POSIX access ACL; <paramref name="includeXattrs"/>: every other extended
        /// attribute too; then the usage flags and the times.
        /// </summary>
        /// <param name="ownerIfAllowed">
        /// A copy (not a replacement of the original): the owner and group where this user may give them (as cp -p),
        /// else the copy stays this user's, and the set-user-ID and set-group-ID bits of an owner or group not kept
        /// are dropped. Otherwise an owner that cannot be given is an error.
        /// </param>
        internal static void Copy(OpenFile source, SafeFileDescriptor target, string targetLabel, InodeFlags targetFlags, InodeFlags sourceFlags, bool includeXattrs = true, IReadOnlyCollection<string>? skipXattrs = null, bool ownerIfAllowed = false)
        {
            FileStatus st = source.Status;
            uint mode = st.Permissions;
            if (ownerIfAllowed)
            {
                mode = GiveOwnerIfAllowed(target, st, source.Path);
            }
            else
            {
                GiveOwner(source, target);
            }

            CopyModeAndAcl(source.Handle, st.WithPermissions(mode), source.Path, target, "the copy", "The original is unchanged.");
            foreach (string name in includeXattrs ? Xattrs.List(source.Handle, source.Path) : new List<string>())
            {
                // The module's own marks are never copied: a mark a killed run left on the original would otherwise live on in
                // every copy made from it (a hostile review).
                if (skipXattrs?.Contains(name) == true || name == AccessAcl || name.StartsWith(TemporaryFile.AttributePrefix, StringComparison.Ordinal))
                {
                    continue;
                }

                // Null: removed meanwhile.
                if (Xattrs.Get(source.Handle, name, source.Path) is byte[] value)
                {
                    Xattrs.Set(target, name, value, source.Path, $"Cannot copy the extended attribute '{name}' of", "The original is unchanged.");
                }
            }

            InodeFlags carried = (targetFlags & ~InodeAttributes.Carried) | (sourceFlags & InodeAttributes.Carried);
            if (carried != targetFlags)
            {
                InodeAttributes.Set(target, targetLabel, carried);
            }

            Metadata.SetTimes(target, st.AccessTime, st.ModifyTime, source.Path, "Cannot give the copy the timestamps of", "The original is unchanged.");
        }

        /// <summary>
        /// Gives the copy <paramref name="target"/> (a replacement of the original) the original's owner and group, or
        /// refuses. Done with the rest of the metadata, and first on the empty copy where the owner stays this user's
        /// (only the group can be refused then: proven before any data is read; an owner given away by root is given
        /// with the rest, so that a copy a killed run leaves is still root's to remove).
        /// </summary>
        internal static void GiveOwner(OpenFile source, SafeFileDescriptor target) =>
            Metadata.SetOwner(target, source.Status.Uid, source.Status.Gid, source.Path, "Cannot give the copy the owner and group of", OwnerAdvice(source.Status, "The original is unchanged."));

        /// <summary>
        /// Refuses, before anything is read or written (also under -WhatIf), the rewrite of a file whose copy this user
        /// could not give the original's owner, group and mode, as the kernel decides it (chown_ok, chgrp_ok,
        /// setattr_should_drop_sgid; capabilities only for ids mapped in this user namespace): another user's file
        /// needs CAP_CHOWN to give the copy away and CAP_FOWNER to set its mode and times afterwards (and to read the
        /// original without moving its access time, O_NOATIME); one of a group this user is not in needs CAP_CHOWN,
        /// except where a set-group-ID directory gives new files that group, and then its set-group-ID bit needs
        /// CAP_FSETID. The run proves the group on the empty copy (<see cref="GiveOwner"/>). Where the credentials
        /// cannot be read, the kernel says it at the fchown.
        /// </summary>
        internal static void ThrowIfOwnerCannotBeGiven(OpenFile source, string what)
        {
            if (Processes.Current() is not Processes.Credentials me)
            {
                return;
            }

            FileStatus st = source.Status;
            uint newFileGid = source.Directory is SafeFileDescriptor dir && FileStatus.Of(dir) is FileStatus d && (d.Mode & SetGroupIdBit) != 0 ? d.Gid : me.FsGid;
            string? why = null;
            if (st.Uid != me.FsUid)
            {
                if (!me.Has(Processes.Credentials.Chown, st.Uid, st.Gid) || !me.Has(Processes.Credentials.Fowner, st.Uid, st.Gid))
                {
                    why = $"its new copy could not be given its owner (uid {st.Uid}) and group (gid {st.Gid}). Only root (with CAP_CHOWN and CAP_FOWNER, for owners mapped in its user namespace) can rewrite a file owned by someone else";
                }
            }
            else if (!me.InGroup(st.Gid) && st.Gid != newFileGid && !me.Has(Processes.Credentials.Chown, st.Uid, st.Gid))
            {
                why = $"its new copy could not be given its group: it is this user's, but its group (gid {st.Gid}) is not one of this user's groups, and only root (CAP_CHOWN) or a member may give a file that group";
            }

            if (why is null && (st.Mode & SetGroupIdBit) != 0 && !me.InGroup(st.Gid) && !me.Has(Processes.Credentials.Fsetid, st.Uid, st.Gid))
            {
                why = $"its new copy could not keep its set-group-ID bit: this user is not in its group (gid {st.Gid}), and the kernel drops the bit for anyone else but root (CAP_FSETID)";
            }

            if (why is not null)
            {
                throw new FileOperationException(FileErrorKind.AccessDenied, Errno.EPERM, "fchown", source.Path, $"Cannot {FileGuards.Phrase(what, source.Path)}: {why}. Nothing was read or changed.");
            }
        }

        /// <summary>S_ISGID: on a directory, new files in it get its group; on a file, it runs with its group.</summary>
        private const uint SetGroupIdBit = 0x400;

        /// <summary>S_ISUID: a file that runs as its owner.</summary>
        private const uint SetUserIdBit = 0x800;

        private static string OwnerAdvice(in FileStatus st, string outcome) =>
            st.Uid != Metadata.FileSystemUserId
                ? $"Only root (CAP_CHOWN) can rewrite a file owned by someone else. {outcome}"
                : $"It is this user's, but its group (gid {st.Gid}) is not one of this user's groups, and only root (CAP_CHOWN) or a member may give a file that group. {outcome}";

        /// <summary>
        /// The owner and group of <paramref name="st"/> on <paramref name="target"/> where this user may give them, else
        /// the group alone where it may, else neither (as cp -p does without root): the mode to give it then, without
        /// the set-user-ID bit where the owner was not kept and the set-group-ID bit where the group was not.
        /// </summary>
        internal static uint GiveOwnerIfAllowed(SafeFileDescriptor target, in FileStatus st, string path)
        {
            int errno = Metadata.TrySetOwner(target, st.Uid, st.Gid);
            if (errno != 0)
            {
                // As cp -p: only a caller who may not give files away (EPERM, EINVAL: an id this namespace cannot map)
                // goes on without; root refused (root_squash over NFS, an id unmapped in a user namespace) is an error.
                if (errno is not (Errno.EPERM or Errno.EINVAL) || Metadata.FileSystemUserId == 0)
                {
                    throw FileOperationException.FromErrno(errno, "fchown", path, "Cannot give the copy the owner and group of", "The original is unchanged.");
                }

                _ = Metadata.TrySetOwner(target, uint.MaxValue, st.Gid);
            }

            uint mode = st.Permissions;
            if (FileStatus.Of(target) is FileStatus now)
            {
                mode &= now.Uid == st.Uid ? ~0u : ~SetUserIdBit;
                mode &= now.Gid == st.Gid ? ~0u : ~SetGroupIdBit;
            }
            else
            {
                mode &= ~(SetUserIdBit | SetGroupIdBit);
            }

            return mode;
        }

        /// <summary>
        /// The default ACL of directory <paramref name="from"/> on directory <paramref name="target"/>, or none where it
        /// has none: a directory made in one with a default ACL inherits that one, which the original never had.
        /// </summary>
        internal static void CopyDefaultAcl(SafeFileDescriptor from, string path, SafeFileDescriptor target, string what, string advice)
        {
            byte[]? acl = Xattrs.Get(from, DefaultAcl, path);
            Xattrs.TryRemove(target, DefaultAcl);
            if (acl is not null)
            {
                Xattrs.Set(target, DefaultAcl, acl, path, $"Cannot give {what} the default ACL of", advice);
            }
        }

        /// <summary>
        /// The mode (of <paramref name="st"/>) and the access ACL of <paramref name="from"/> on <paramref name="target"/>,
        /// a new file: an access ACL the new file got from its directory's default ACL is removed first, so the
        /// target admits exactly whom the original admits (never more). <paramref name="what"/> names the target in
        /// errors; <paramref name="advice"/> ends them.
        /// </summary>
        internal static void CopyModeAndAcl(SafeFileDescriptor from, in FileStatus st, string path, SafeFileDescriptor target, string what, string advice)
        {
            byte[]? acl = Xattrs.Get(from, AccessAcl, path);
            Xattrs.TryRemove(target, AccessAcl);
            Metadata.SetMode(target, st.Permissions, path, $"Cannot give {what} the mode of", advice);
            if (acl is not null)
            {
                Xattrs.Set(target, AccessAcl, acl, path, $"Cannot give {what} the access ACL of", advice);
            }
        }
    }
}
