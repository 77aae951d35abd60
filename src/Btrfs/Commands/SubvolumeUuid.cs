namespace Btrfs.Commands
{
    /// <summary>
    /// A -Uuid argument: a subvolume's UUID as a Guid or its text (a piped object's Uuid, also one read back from
    /// JSON or CSV). Whatever is given is kept as given, and a value that is not a UUID is refused (InvalidArgument)
    /// when the subvolume is looked at, never taken as "no UUID": a Guid parameter would leave a piped value that
    /// does not convert unbound, without a word. Binding from the pipeline always needs a conversion to this
    /// type, so a piped object's Path is bound first (its parameter set chosen by its path), then its Uuid.
    /// </summary>
    public sealed class SubvolumeUuid
    {
        /// <summary>Takes a Guid, or anything else as its text (null: none given).</summary>
        /// <param name="value">The value given or piped.</param>
        public SubvolumeUuid(object? value) => Text = value is System.Management.Automation.PSObject o ? o.BaseObject?.ToString() : value?.ToString();

        /// <summary>The value as text (null when null was given).</summary>
        public string? Text { get; }

        /// <inheritdoc/>
        public override string ToString() => Text ?? string.Empty;

        /// <summary>
        /// The subvolume <paramref name="cmdlet"/>'s -Uuid names for <paramref name="path"/> (none when it was not bound;
        /// refused, InvalidArgument, when it was bound to something that is not a UUID): one place for every cmdlet
        /// that takes it, so none reads it differently. <paramref name="ofObject"/>: the Uuid of an object given as the path
        /// (<see cref="PipedPathAttribute.UuidOf"/>), checked where -Uuid was not bound.
        /// </summary>
        internal static Btrfs.Core.NamedSubvolume Named(System.Management.Automation.PSCmdlet cmdlet, SubvolumeUuid? uuid, string verb, string path, string outcome, SubvolumeUuid? ofObject = null)
        {
            bool bound = cmdlet.MyInvocation.BoundParameters.ContainsKey("Uuid");
            return Btrfs.Core.NamedSubvolume.Parse(bound || ofObject is not null, bound ? uuid?.Text : ofObject?.Text, null, verb, path, outcome);
        }
    }
}
