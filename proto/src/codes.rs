//! The code lists of `docs/domain.md` section 3 that are shared by every format: product categories as
//! their 4-digit catalogue codes.

use crate::v1::ProductCategory;

/// Every category of the key-product catalogue, in catalogue order.
pub const CATEGORIES: [ProductCategory; 18] = [
    ProductCategory::EBike,
    ProductCategory::EBikeLithiumBattery,
    ProductCategory::EBikeCharger,
    ProductCategory::GasCooker,
    ProductCategory::GasHose,
    ProductCategory::GasWaterHeater,
    ProductCategory::Toy,
    ProductCategory::ChildrensClothing,
    ProductCategory::SchoolSupplies,
    ProductCategory::WireAndCable,
    ProductCategory::PlugSocketAdaptor,
    ProductCategory::SmallKitchenAppliance,
    ProductCategory::ArchitecturalPaint,
    ProductCategory::WoodBasedPanel,
    ProductCategory::PlasticShoppingBag,
    ProductCategory::DisposablePlasticTableware,
    ProductCategory::HazardousChemical,
    ProductCategory::PlasticFoodPackaging,
];

/// The 4-digit catalogue code of a category (`"0102"`), or `None` for UNSPECIFIED.
pub fn category_code(category: ProductCategory) -> Option<String> {
    match category {
        ProductCategory::Unspecified => None,
        c => Some(format!("{:04}", c as i32)),
    }
}

/// The catalogue code of a category given as its protobuf enum value (`""` for none or unknown).
pub fn category_code_of(value: i32) -> String {
    ProductCategory::try_from(value).ok().and_then(category_code).unwrap_or_default()
}

/// The category of a 4-digit catalogue code; `None` for anything outside the catalogue.
pub fn category_from_code(code: &str) -> Option<ProductCategory> {
    if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = code.parse().ok()?;
    match ProductCategory::try_from(n) {
        Ok(ProductCategory::Unspecified) | Err(_) => None,
        Ok(c) => Some(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips_through_its_code() {
        for c in CATEGORIES {
            let code = category_code(c).unwrap();
            assert_eq!(category_from_code(&code), Some(c), "{code}");
        }
        assert_eq!(category_code(ProductCategory::EBikeLithiumBattery).as_deref(), Some("0102"));
        assert_eq!(category_from_code("102"), None);
        assert_eq!(category_from_code("0104"), None);
        assert_eq!(category_from_code("0000"), None);
        assert_eq!(category_from_code("+102"), None);
    }
}
