// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @notice OpenZeppelin's ERC721 with an open mint: the gas report's floor for a rule-free NFT.
contract PlainNFT is ERC721 {
    constructor() ERC721("Plain", "PLAIN") {}

    function mint(address to, uint256 id) external {
        _mint(to, id);
    }
}
