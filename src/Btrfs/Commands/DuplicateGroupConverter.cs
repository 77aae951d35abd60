namespace Btrfs.Commands
{
    using System;
    using System.Collections;
    using System.Collections.Generic;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>
    /// Turns a duplicate group that was saved and read back (Export-Clixml and Import-Clixml, ConvertTo-Json and
    /// ConvertFrom-Json, or received through remoting: a property bag, no longer the .NET type) into a
    /// <see cref="BtrfsDuplicateGroup"/> again, so that "review now, deduplicate later" works. Registered for the
    /// type in Btrfs.Types.ps1xml. Nothing is trusted that a hand-made group would not be: each range's Inode,
    /// Device and Generation still decide whether the file under its name is the one searched.
    /// </summary>
    public sealed class DuplicateGroupConverter : PSTypeConverter
    {
        /// <inheritdoc/>
        public override bool CanConvertFrom(object sourceValue, Type destinationType) =>
            destinationType == typeof(BtrfsDuplicateGroup) && sourceValue is PSObject { BaseObject: not BtrfsDuplicateGroup } pso
            && pso.Properties["Ranges"] is not null && pso.Properties["Length"] is not null;

        /// <inheritdoc/>
        public override object ConvertFrom(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase)
        {
            if (sourceValue is not PSObject pso || !CanConvertFrom(sourceValue, destinationType))
            {
                throw new PSInvalidCastException($"Cannot make a {nameof(BtrfsDuplicateGroup)} of this object: it has no Ranges and Length, as Find-BtrfsDuplicate's groups have.");
            }

            var ranges = new List<DuplicateRange>();
            foreach (object? item in AsList(pso.Properties["Ranges"].Value))
            {
                PSObject r = PSObject.AsPSObject(item);
                ranges.Add(new DuplicateRange
                {
                    Path = Value<string>(r, "Path") ?? throw new PSInvalidCastException("A range of the group has no Path."),
                    Offset = Value<long>(r, "Offset"),
                    Length = Value<long>(r, "Length"),
                    Inode = Value<ulong>(r, "Inode"),
                    Device = Value<ulong>(r, "Device"),
                    Generation = Value<uint>(r, "Generation"),
                    FreesNothing = Value<bool>(r, "FreesNothing"),
                    SharedWithKeeperBytes = Value<long>(r, "SharedWithKeeperBytes"), // 0 where it was not kept (an earlier version's)
                });
            }

            return new BtrfsDuplicateGroup
            {
                Ranges = ranges.ToArray(),
                Length = Value<long>(pso, "Length"),
                AlreadySharedBytes = Value<long>(pso, "AlreadySharedBytes"),
                ReclaimableBytes = Value<long>(pso, "ReclaimableBytes"),
            };
        }

        /// <inheritdoc/>
        public override bool CanConvertTo(object sourceValue, Type destinationType) => false;

        /// <inheritdoc/>
        public override object ConvertTo(object sourceValue, Type destinationType, IFormatProvider formatProvider, bool ignoreCase) =>
            throw new PSInvalidCastException($"A {nameof(BtrfsDuplicateGroup)} converts to nothing else.");

        private static IEnumerable AsList(object? value) =>
            PSObject.AsPSObject(value).BaseObject switch
            {
                string s => new object[] { s },
                IEnumerable e => e,
                null => Array.Empty<object>(),
                object one => new[] { one },
            };

        /// <summary>A property's value as <typeparamref name="T"/>; a list where one value belongs (two paths joined into one) is refused.</summary>
        private static T? Value<T>(PSObject o, string name) =>
            o.Properties[name]?.Value is not object v ? default
            : PSObject.AsPSObject(v).BaseObject is IEnumerable and not string ? throw new PSInvalidCastException($"The group's {name} holds several values where one belongs.")
            : LanguagePrimitives.ConvertTo<T>(v);
    }
}
