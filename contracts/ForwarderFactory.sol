// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Forwarder} from "./Forwarder.sol";

/// @title ForwarderFactory
/// @notice Makes per-order deposit addresses: EIP-1167 clones of one immutable Forwarder, at a
///         CREATE2 address that commits to the payout address, and flushes them in batches.
/// @dev Deployed through the deterministic CREATE2 deployer with no constructor arguments, so it
///      has the same address on every chain; its constructor creates the implementation (CREATE
///      from the factory with nonce 1, hence also one address everywhere). Anyone may call any
///      function: funds only ever move to the payout address the clone was initialised with.
contract ForwarderFactory {
    struct Item {
        address payout;
        bytes32 depositSalt;
        address token; // address(0): native coin
    }

    address public immutable implementation;
    bytes32 private immutable cloneCodeHash;

    event ForwarderDeployed(
        address indexed forwarder, address indexed payout, bytes32 indexed depositSalt
    );
    event ItemFlushed(
        uint256 indexed index, address indexed forwarder, address indexed token, uint256 amount
    );
    event ItemFailed(
        uint256 indexed index, address indexed forwarder, address indexed token, bytes reason
    );

    error AlreadyDeployed(address forwarder);
    error ItemOutOfGas(uint256 index);

    constructor() {
        implementation = address(new Forwarder());
        cloneCodeHash = keccak256(_cloneCode());
    }

    /// @notice The deposit address for (payout, depositSalt), deployed or not.
    function predictAddress(address payout, bytes32 depositSalt) public view returns (address) {
        bytes32 h = keccak256(
            abi.encodePacked(bytes1(0xff), address(this), _salt(payout, depositSalt), cloneCodeHash)
        );
        return address(uint160(uint256(h)));
    }

    /// @notice Creates the clone and initialises it with `payout` in the same call.
    function deploy(address payout, bytes32 depositSalt) public returns (address forwarder) {
        bytes memory code = _cloneCode();
        bytes32 salt = _salt(payout, depositSalt);
        assembly ("memory-safe") {
            forwarder := create2(0, add(code, 32), mload(code), salt)
        }
        if (forwarder == address(0)) revert AlreadyDeployed(predictAddress(payout, depositSalt));
        Forwarder(payable(forwarder)).init(payout);
        emit ForwarderDeployed(forwarder, payout, depositSalt);
    }

    /// @notice Deploys the clone if it has no code yet, then flushes `token` to the payout.
    ///         Reverts on failure; deployAndFlush() calls it once per item to isolate failures.
    function deployAndFlushOne(address payout, bytes32 depositSalt, address token)
        public
        returns (uint256 amount)
    {
        address forwarder = predictAddress(payout, depositSalt);
        if (forwarder.code.length == 0) deploy(payout, depositSalt);
        return Forwarder(payable(forwarder)).flush(token);
    }

    /// @notice Deploys where needed and flushes every item; one failing item does not revert the
    ///         batch. Emits ItemFlushed or ItemFailed (with the revert data) per item and returns the
    ///         amount that left each forwarder (0 for failed items).
    /// @dev Reverts with ItemOutOfGas when an item failed because it ran out of gas, so that gas
    ///      estimation cannot settle on a limit at which items fail for lack of gas.
    function deployAndFlush(Item[] calldata items) external returns (uint256[] memory amounts) {
        amounts = new uint256[](items.length);
        for (uint256 i = 0; i < items.length; ++i) {
            Item calldata item = items[i];
            address forwarder = predictAddress(item.payout, item.depositSalt);
            uint256 gasBefore = gasleft();
            try this.deployAndFlushOne(item.payout, item.depositSalt, item.token) returns (
                uint256 amount
            ) {
                amounts[i] = amount;
                emit ItemFlushed(i, forwarder, item.token, amount);
            } catch (bytes memory reason) {
                if (gasleft() < gasBefore / 63) revert ItemOutOfGas(i);
                emit ItemFailed(i, forwarder, item.token, reason);
            }
        }
    }

    function _salt(address payout, bytes32 depositSalt) private pure returns (bytes32) {
        return keccak256(abi.encode(payout, depositSalt));
    }

    /// @dev EIP-1167 minimal proxy creation code for `implementation`.
    function _cloneCode() private view returns (bytes memory) {
        return abi.encodePacked(
            hex"3d602d80600a3d3981f3363d3d373d3d3d363d73",
            implementation,
            hex"5af43d82803e903d91602b57fd5bf3"
        );
    }
}
