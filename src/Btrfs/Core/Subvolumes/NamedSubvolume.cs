namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using Btrfs.Kernel;

    /// <summary>
    /// The subvolume a piped object names, by its Uuid and its Id (either may be missing): a path it is taken
    /// by must still lead to that subvolume. A name renamed, replaced (by a link to another subvolume, too),
    /// mounted over since the object was made, or an id given to a new subvolume, is refused as
    /// SubvolumeReplaced. <see cref="Any"/> names none: whatever the path leads to.
    /// </summary>
    internal readonly struct NamedSubvolume
    {
        private readonly ulong[]? ids;

        /// <summary>Whether a UUID was given, the nil UUID too: then the subvolume found must report the nil UUID.</summary>
        private readonly bool uuidGiven;

        internal NamedSubvolume(Guid uuid, IEnumerable<ulong>? ids, bool uuidGiven = false)
        {
            Uuid = uuid;
            this.ids = ids?.Distinct().ToArray();
            this.uuidGiven = uuidGiven || uuid != Guid.Empty;
        }

        /// <summary>Whatever the path leads to.</summary>
        internal static NamedSubvolume Any => default;

        /// <summary>The UUID named; Guid.Empty: none, unless it was given as such (see <see cref="uuidGiven"/>).</summary>
        internal Guid Uuid { get; }

        /// <summary>The ids named (one of them); empty: any.</summary>
        internal IReadOnlyList<ulong> Ids => ids ?? Array.Empty<ulong>();

        /// <summary>Whether it names anything to check.</summary>
        internal bool Names => uuidGiven || Ids.Count > 0;

        /// <summary>The subvolume <paramref name="s"/> (from a piped live object): by its UUID and its id (0, a hand-built object's: none).</summary>
        internal static NamedSubvolume Of(BtrfsSubvolumeInfo s) => new(s.Uuid, s.Id == 0 ? null : new[] { s.Id });

        /// <summary>
        /// The subvolume named by a UUID <paramref name="given"/> as <paramref name="uuid"/> (a piped object's Uuid: a
        /// Guid's text, or text read back from JSON or CSV) and ids; a value given that is not a UUID (empty or null
        /// too) is refused (InvalidArgument, "Cannot <paramref name="verb"/> '<paramref name="path"/>' ...
        /// <paramref name="outcome"/>"), never taken as "any".
        /// </summary>
        internal static NamedSubvolume Parse(bool given, string? uuid, IEnumerable<ulong>? ids, string verb, string path, string outcome)
        {
            Guid parsed = Guid.Empty;
            if (given && !Guid.TryParse(uuid?.Trim(), out parsed))
            {
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "Uuid",
                    path,
                    $"Cannot {verb} '{path}': the Uuid given with it ({(string.IsNullOrEmpty(uuid) ? "empty" : $"'{uuid}'")}) is not a UUID, so it cannot be checked that the path still leads to the subvolume meant. {outcome}. Give the UUID as Get-BtrfsSubvolume shows it (or pipe its object), or the path alone.");
            }

            // The nil UUID given is the nil UUID looked for, not "none": before, -Uuid
            // 00000000-0000-0000-0000-000000000000 (a default Guid, a failed conversion) switched the check off (a hostile review).
            return new NamedSubvolume(parsed, ids, uuidGiven: given);
        }

        /// <summary>Whether the subvolume with <paramref name="id"/> and <paramref name="uuid"/> is the one named.</summary>
        internal bool Matches(ulong id, Guid uuid) =>
            (!uuidGiven || uuid == Uuid) && (Ids.Count == 0 || Ids.Contains(id));

        /// <summary>
        /// Throws SubvolumeReplaced, "Cannot <paramref name="verb"/> '<paramref name="path"/>': it is now subvolume
        /// N (uuid), not ... <paramref name="outcome"/> (e.g. "Nothing was deleted"; empty: none); list the subvolumes again", unless the subvolume found there is the one named.
        /// </summary>
        internal void Check(ulong id, Guid uuid, string verb, string path, string outcome)
        {
            if (!Matches(id, uuid))
            {
                throw new FileOperationException(
                    FileErrorKind.SubvolumeReplaced,
                    0,
                    "BTRFS_IOC_GET_SUBVOL_INFO",
                    path,
                    $"Cannot {verb} '{path}': it now leads to subvolume {id} ({uuid}), not the subvolume {this} asked for {(uuidGiven ? "by its Uuid (-Uuid, or the piped object's)" : "by its Id")} (renamed, replaced or mounted over since it was listed, or its id given to a new one). {(outcome.Length == 0 ? "List" : outcome + "; list")} the subvolumes again.");
            }
        }

        /// <summary>"id N (uuid)", "uuid", "id N" or "id N or M".</summary>
        public override string ToString()
        {
            string id = Ids.Count == 0 ? string.Empty : "id " + string.Join(" or ", Ids.Select(i => i.ToString(CultureInfo.InvariantCulture)));
            return !uuidGiven ? id : id.Length == 0 ? Uuid.ToString() : $"{id} ({Uuid})";
        }
    }
}
