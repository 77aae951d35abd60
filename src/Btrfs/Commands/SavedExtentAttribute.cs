namespace Btrfs.Commands
{
    using System.Collections.Generic;
    using System.Management.Automation;
    using Btrfs.Core;

    /// <summary>
    /// Turns a FileExtent read back by Import-Clixml or remoting (a property bag, "Deserialized.Btrfs.Core.FileExtent")
    /// into a FileExtent, so -InputObject takes it as it was saved: before, it bound -LiteralPath by its PSPath, and
    /// Show-ExtentMap drew the whole live file where the help promises only the piped extents (a hostile review). One
    /// that lacks a property, or whose value does not convert, passes unchanged (and binds as it did). Anything else
    /// passes unchanged.
    /// </summary>
    internal sealed class SavedExtentAttribute : ArgumentTransformationAttribute
    {
        private const string SavedType = "Deserialized.Btrfs.Core.FileExtent";

        /// <inheritdoc/>
        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object? value = inputData is PSObject wrapper ? wrapper.BaseObject : inputData;
            if (value is not (string or FileExtent) && LanguagePrimitives.GetEnumerable(value) is System.Collections.IEnumerable list)
            {
                var each = new List<object?>();
                foreach (object? item in list)
                {
                    each.Add(item is null ? null : One(item));
                }

                return each.ToArray();
            }

            return One(inputData);
        }

        private static object One(object inputData)
        {
            if (inputData is not PSObject saved || saved.BaseObject is FileExtent || !saved.TypeNames.Contains(SavedType))
            {
                return inputData;
            }

            try
            {
                return Get<string>(saved, "Path") is { Length: > 0 } path
                    ? new FileExtent(
                        path,
                        Get<long>(saved, "Index"),
                        Get<long>(saved, "LogicalOffset"),
                        Get<long>(saved, "PhysicalOffset"),
                        Get<long>(saved, "Length"),
                        Get<ExtentFlags>(saved, "Flags"),
                        Get<bool>(saved, "IsHole"),
                        Get<FileSystemKind>(saved, "FileSystem"))
                    : inputData;
            }
            catch (PSInvalidCastException)
            {
                return inputData;
            }
            catch (System.ArgumentException)
            {
                return inputData;
            }
        }

        /// <summary>The property's value as <typeparamref name="T"/> (a missing one throws, and the object passes unchanged).</summary>
        private static T Get<T>(PSObject o, string name) =>
            o.Properties[name] is { } p && p.Value is not null
                ? LanguagePrimitives.ConvertTo<T>(p.Value)
                : throw new System.ArgumentException(name);
    }
}
